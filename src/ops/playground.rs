//! `mup playground`: a throw-away replica set named `playground`.

use crate::deployment::layout::Layout;
use crate::deployment::security::Settings;
use crate::deployment::topology::{NodeSpec, Topology};
use crate::error::InputError;
use crate::ops::cluster::{binaries, deploy_topology, start, Binaries};
use crate::ui::Ui;

/// The playground: a replica set `rs0` of `nodes` members on free ports, named `playground`.
pub(crate) const PLAYGROUND: &str = "playground";

/// The playground's name, for the commands that act on an existing one (stop, status,
/// connect, destroy); when there is none, an error that says so and how to make one.
pub(crate) fn existing_playground() -> anyhow::Result<&'static str> {
    if Layout::for_cluster(PLAYGROUND).meta_file().is_file() {
        return Ok(PLAYGROUND);
    }
    Err(InputError::new(
        "mup playground",
        "",
        format!(
            "there is no playground (under {}): `mup playground start` makes one",
            crate::deployment::layout::clusters_dir().display()
        ),
    )
    .into())
}

/// `mup playground start`: deploys the playground, or starts it if it exists.
pub(crate) fn playground_start(
    ui: &Ui,
    nodes: usize,
    bins: Option<Binaries>,
    init: bool,
    security: Option<Settings>,
) -> anyhow::Result<()> {
    let layout = Layout::for_cluster(PLAYGROUND);
    if layout.meta_file().exists() {
        crate::deployment::security::refuse_change(&layout, PLAYGROUND, security.as_ref())?;
        start(ui, PLAYGROUND, &[], &[], init)
    } else {
        if nodes == 0 {
            return Err(
                InputError::new("--nodes", "", "the playground needs at least one node").into(),
            );
        }
        let bins = match bins {
            Some(b) => b,
            None => binaries(
                ui,
                None,
                None,
                &crate::ops::packages::Source::new(None),
                false,
            )?,
        };
        let topology = Topology {
            mongod_servers: (0..nodes)
                .map(|_| NodeSpec {
                    host: Some("localhost".into()),
                    port: Some(0),
                    replica_set: Some("rs0".into()),
                    ..NodeSpec::default()
                })
                .collect(),
            ..Topology::default()
        };
        deploy_topology(
            ui,
            PLAYGROUND,
            topology,
            "playground topology".into(),
            &bins,
            (init, true),
            security,
        )
    }
}
