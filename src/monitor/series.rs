//! One scrape's series, encoded by the Prometheus client crate: a [`Snapshot`] of
//! supervisord's answer, /proc and the exit counts is a collector that hands each value to the
//! encoder with the program's label set, made once per program ([`Labels`]) and shared, not
//! hashed or copied at each scrape. Names, help texts (ending with a period, as the crate's
//! registry writes them) and types are those the exporter has always served.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

/// The labels of every per-program series.
#[derive(Clone, Debug, Default, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Labels {
    pub name: String,
    pub group: String,
    pub cluster: String,
    /// config | mongod | mongos | events | metrics; empty for a program mup did not make.
    pub role: String,
    pub replica_set: String,
    pub host: String,
    pub port: String,
}

#[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
struct DaemonLabels {
    cluster: String,
}

/// One program as supervisord reported it, and its process as /proc shows it.
#[derive(Debug)]
pub(super) struct Program {
    pub labels: Arc<Labels>,
    pub state: i32,
    pub exit_status: i64,
    /// STARTING, RUNNING or STOPPING: the start time and usage are its process's.
    pub running: bool,
    pub start: i64,
    /// CPU seconds and resident bytes.
    pub usage: Option<(f64, u64)>,
}

/// What one scrape reports.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub cluster: String,
    /// supervisord's state code when it answered: 1 RUNNING, -1 shutting down.
    pub daemon_state: Option<i32>,
    pub programs: Vec<Program>,
    /// Unexpected exits of every known program, zero included.
    pub exits: Vec<(Arc<Labels>, u64)>,
}

/// The exposition formats, as the scraper asks (`Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// OpenMetrics text, which a Prometheus server asks for first.
    OpenMetrics,
    /// Prometheus text 0.0.4, for every other client (curl, promtool).
    Text,
}

impl Snapshot {
    /// The exposition text.
    pub(super) fn encode(self, format: Format) -> String {
        // About 1.1 KB of text per program (its seven series): one allocation, not a dozen.
        let mut body = String::with_capacity(1024 + 1152 * self.programs.len());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let encoded = match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut body, &registry),
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut body, &registry)
            }
        };
        if let Err(e) = encoded {
            logln!("mup-metrics: cannot encode: {e}");
        }
        body
    }

    fn daemon(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let labels = DaemonLabels {
            cluster: self.cluster.clone(),
        };
        let up = i64::from(self.daemon_state.is_some());
        let mut e = encoder.encode_descriptor(
            "mup_supervisord_up",
            "Whether the cluster's supervisord answered this scrape.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(up).encode(e.encode_family(&labels)?)?;
        let mut e = encoder.encode_descriptor(
            "mup_supervisord_state",
            "supervisord's state code: 1 RUNNING, -1 shutting down (or restarting).",
            None,
            MetricType::Gauge,
        )?;
        if let Some(code) = self.daemon_state {
            ConstGauge::new(i64::from(code)).encode(e.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// One gauge family: `value` of each program that has one.
    fn gauges(
        &self,
        encoder: &mut DescriptorEncoder,
        (name, help, unit): (&str, &str, Option<Unit>),
        value: impl Fn(&Program) -> Option<i64>,
    ) -> std::fmt::Result {
        let mut e = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
        for p in &self.programs {
            if let Some(v) = value(p) {
                ConstGauge::new(v).encode(e.encode_family(p.labels.as_ref())?)?;
            }
        }
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        self.daemon(&mut encoder)?;
        // node_exporter's supervisord collector: its names, help texts and labels.
        let node = |name, help| (name, help, None);
        self.gauges(
            &mut encoder,
            node("node_supervisord_up", "Process Up."),
            |p| Some(i64::from(p.running)),
        )?;
        self.gauges(
            &mut encoder,
            node("node_supervisord_state", "Process State."),
            |p| Some(i64::from(p.state)),
        )?;
        self.gauges(
            &mut encoder,
            node("node_supervisord_exit_status", "Process Exit Status."),
            |p| Some(p.exit_status),
        )?;
        self.gauges(
            &mut encoder,
            node("node_supervisord_start_time_seconds", "Process start time."),
            |p| p.running.then_some(p.start),
        )?;
        let mut e = encoder.encode_descriptor(
            "mup_process_cpu_seconds",
            "CPU time (user and system) of the program's process.",
            None,
            MetricType::Counter,
        )?;
        for p in self.programs.iter().filter(|p| p.running) {
            if let Some((seconds, _)) = p.usage {
                ConstCounter::new(seconds).encode(e.encode_family(p.labels.as_ref())?)?;
            }
        }
        self.gauges(
            &mut encoder,
            (
                "mup_process_resident_memory",
                "Resident memory of the program's process.",
                Some(Unit::Bytes),
            ),
            |p| {
                p.usage
                    .filter(|_| p.running)
                    .map(|(_, bytes)| i64::try_from(bytes).unwrap_or(i64::MAX))
            },
        )?;
        let mut e = encoder.encode_descriptor(
            "mup_process_unexpected_exits",
            "Unexpected exits recorded in events.log.",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &self.exits {
            ConstCounter::new(*n).encode(e.encode_family(labels.as_ref())?)?;
        }
        Ok(())
    }
}
