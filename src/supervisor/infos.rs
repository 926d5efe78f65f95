//! The answers that carry `getAllProcessInfo`'s array, decoded straight from quick-xml's
//! events into [`ProcessInfo`]s: no tree of values, no map per process. This is the one
//! answer that grows with the cluster (about 1.2 KB of XML per program); decoding it through
//! dxr's generic values costs several times more (docs/supervisord.md §8). Anything not of
//! the expected shape (a fault, a fault inside a multicall, a field of another type) is
//! `None` here, and decoded again by the generic path, which names the problem.

use super::{Client, ProcessInfo, Result};
use dxr::Value;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::BTreeMap;

impl Client {
    /// `getIdentification` and `getAllProcessInfo` in one request (`system.multicall`).
    pub fn identification_and_infos(&self) -> Result<(String, Vec<ProcessInfo>)> {
        let calls: Vec<Value> = [
            "supervisor.getIdentification",
            "supervisor.getAllProcessInfo",
        ]
        .into_iter()
        .map(|m| {
            let mut call = BTreeMap::new();
            call.insert("methodName".to_string(), Value::String(m.to_string()));
            call.insert("params".to_string(), Value::Array(Vec::new()));
            Value::Struct(call)
        })
        .collect();
        let method = "system.multicall";
        let (status, text) = self.post(method, vec![Value::Array(calls)])?;
        if let Some(answer) = (status == 200).then(|| identified(&text)).flatten() {
            return Ok(answer);
        }
        let value = super::decode_answer(method, status, &text)?;
        let mut results = super::multicall_results(&value)?.into_iter();
        match (results.next(), results.next()) {
            (Some(ident), Some(infos)) => {
                Ok((super::as_string(&ident?)?, super::process_infos(&infos?)?))
            }
            _ => Err(super::shape(method)),
        }
    }
}

/// The process infos of a `getAllProcessInfo` answer, or `None` when it is not one.
pub(crate) fn process_infos(text: &str) -> Option<Vec<ProcessInfo>> {
    let mut r = reader(text);
    open_answer(&mut r)?;
    let infos = array_of_infos(&mut r)?;
    close_answer(&mut r)?;
    Some(infos)
}

/// The identification and process infos of the multicall
/// [`Client::identification_and_infos`] makes, or `None` when it is not one of both.
fn identified(text: &str) -> Option<(String, Vec<ProcessInfo>)> {
    let mut r = reader(text);
    open_answer(&mut r)?;
    start(&mut r, "array")?;
    start(&mut r, "data")?;
    start(&mut r, "value")?;
    let ident = scalar(&mut r)?.into_string()?;
    start(&mut r, "value")?;
    let infos = array_of_infos(&mut r)?;
    end(&mut r, "value")?;
    end(&mut r, "data")?;
    end(&mut r, "array")?;
    close_answer(&mut r)?;
    Some((ident, infos))
}

fn reader(text: &str) -> Reader<&[u8]> {
    let mut r = Reader::from_str(text);
    r.config_mut().trim_text(true);
    r
}

/// Through `<methodResponse><params><param><value>`.
fn open_answer(r: &mut Reader<&[u8]>) -> Option<()> {
    loop {
        match r.read_event().ok()? {
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Start(e) if e.name().as_ref() == "methodResponse" => break,
            _ => return None,
        }
    }
    start(r, "params")?;
    start(r, "param")?;
    start(r, "value")
}

/// Through `</value></param></params></methodResponse>` and the end of the text.
fn close_answer(r: &mut Reader<&[u8]>) -> Option<()> {
    for name in ["value", "param", "params", "methodResponse"] {
        end(r, name)?;
    }
    matches!(r.read_event().ok()?, Event::Eof).then_some(())
}

fn start(r: &mut Reader<&[u8]>, name: &str) -> Option<()> {
    match r.read_event().ok()? {
        Event::Start(e) if e.name().as_ref() == name => Some(()),
        _ => None,
    }
}

fn end(r: &mut Reader<&[u8]>, name: &str) -> Option<()> {
    match r.read_event().ok()? {
        Event::End(e) if e.name().as_ref() == name => Some(()),
        _ => None,
    }
}

/// `<array><data>` of `<value><struct>…</struct></value>`, through `</data></array>`.
fn array_of_infos(r: &mut Reader<&[u8]>) -> Option<Vec<ProcessInfo>> {
    start(r, "array")?;
    match r.read_event().ok()? {
        Event::Empty(e) if e.name().as_ref() == "data" => {
            end(r, "array")?;
            return Some(Vec::new());
        }
        Event::Start(e) if e.name().as_ref() == "data" => {}
        _ => return None,
    }
    let mut infos = Vec::new();
    loop {
        match r.read_event().ok()? {
            Event::Start(e) if e.name().as_ref() == "value" => {
                start(r, "struct")?;
                infos.push(info(r)?);
                end(r, "value")?;
            }
            Event::End(e) if e.name().as_ref() == "data" => break,
            _ => return None,
        }
    }
    end(r, "array")?;
    Some(infos)
}

/// A scalar XML-RPC value, its text unescaped.
enum Scalar {
    Int(i32),
    Text(String),
    Other,
}

impl Scalar {
    fn into_string(self) -> Option<String> {
        match self {
            Scalar::Text(t) => Some(t),
            _ => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self {
            Scalar::Int(i) => Some(i64::from(*i)),
            _ => None,
        }
    }
}

/// The value after `<value>`, through `</value>`; `None` for an array or a struct.
fn scalar(r: &mut Reader<&[u8]>) -> Option<Scalar> {
    let (tag, text) = match r.read_event().ok()? {
        // An untyped value is a string.
        Event::End(e) if e.name().as_ref() == "value" => return Some(Scalar::Text(String::new())),
        Event::Text(_) | Event::GeneralRef(_) => {
            return None; // mixed untyped text: left to the generic path
        }
        Event::Empty(e) => (e.name().as_ref().to_string(), String::new()),
        Event::Start(e) => {
            let tag = e.name().as_ref().to_string();
            let raw = r.read_text(e.name()).ok()?;
            (tag, quick_xml::escape::unescape(&raw).ok()?.into_owned())
        }
        _ => return None,
    };
    end(r, "value")?;
    Some(match tag.as_str() {
        "string" => Scalar::Text(text),
        "int" | "i4" => Scalar::Int(text.trim().parse().ok()?),
        "array" | "struct" => return None,
        _ => Scalar::Other,
    })
}

/// The members of one process's `<struct>`, through `</struct>`.
fn info(r: &mut Reader<&[u8]>) -> Option<ProcessInfo> {
    let mut fields: [Option<Scalar>; 12] = Default::default();
    const NAMES: [&str; 12] = [
        "name",
        "group",
        "state",
        "statename",
        "pid",
        "start",
        "stop",
        "now",
        "spawnerr",
        "exitstatus",
        "description",
        "stdout_logfile",
    ];
    loop {
        match r.read_event().ok()? {
            Event::Start(e) if e.name().as_ref() == "member" => {}
            Event::End(e) if e.name().as_ref() == "struct" => break,
            _ => return None,
        }
        start(r, "name")?;
        let raw = r.read_text(quick_xml::name::QName("name")).ok()?;
        let name = quick_xml::escape::unescape(&raw).ok()?;
        start(r, "value")?;
        let value = scalar(r)?;
        end(r, "member")?;
        if let Some(at) = NAMES.iter().position(|n| *n == name) {
            fields[at] = Some(value);
        }
    }
    let [name, group, state, statename, pid, start, stop, now, spawnerr, exitstatus, description, logfile] =
        fields;
    let text = |f: Option<Scalar>| f?.into_string();
    let int = |f: &Option<Scalar>| f.as_ref()?.int();
    Some(ProcessInfo {
        name: text(name)?,
        group: text(group)?,
        state: int(&state)? as i32,
        statename: text(statename)?,
        pid: int(&pid)? as u32,
        start: int(&start)?,
        stop: int(&stop)?,
        now: int(&now)?,
        spawnerr: text(spawnerr).unwrap_or_default(),
        exitstatus: int(&exitstatus).unwrap_or(0),
        description: text(description).unwrap_or_default(),
        logfile: text(logfile).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::{all_process_info, decode_answer, Error};

    /// One process as supervisord's xmlrpclib writes it (members in its order, one a line).
    fn process(name: &str, pid: i32, description: &str) -> String {
        let mut members = String::new();
        let mut member = |n: &str, v: String| {
            members.push_str(&format!(
                "<member>\n<name>{n}</name>\n<value>{v}</value>\n</member>\n"
            ))
        };
        let s = |t: &str| format!("<string>{t}</string>");
        let i = |v: i32| format!("<int>{v}</int>");
        member("name", s(name));
        member("group", s("g"));
        member("state", i(20));
        member("statename", s("RUNNING"));
        member("pid", i(pid));
        member("start", i(1_700_000_000));
        member("stop", i(0));
        member("now", i(1_700_000_042));
        member("spawnerr", s(""));
        member("exitstatus", i(0));
        member("description", s(description));
        member("stdout_logfile", s("/l/a.log"));
        member("stderr_logfile", "<string/>".into());
        format!("<value><struct>\n{members}</struct></value>\n")
    }

    fn answer(value: &str) -> String {
        format!("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n{value}</param>\n</params>\n</methodResponse>\n")
    }

    fn array(items: &str) -> String {
        format!("<value><array><data>\n{items}</data></array></value>\n")
    }

    #[test]
    fn decodes_as_the_generic_values_do() {
        let items = process("a&amp;b &lt;c&gt;", 12, "pid 12, uptime 0:00:42")
            + &process("mongod-2", 0, " Not started &#233;\n");
        let text = answer(&array(&items));
        let generic = crate::supervisor::process_infos(
            &decode_answer("m", 200, &text).expect("the generic decoder reads it"),
        )
        .expect("process infos");
        assert_eq!(generic.len(), 2);
        assert_eq!(generic[0].name, "a&b <c>");
        assert_eq!(generic[1].description, " Not started é\n");
        assert_eq!(process_infos(&text), Some(generic));
        assert_eq!(process_infos(&answer(&array(""))), Some(Vec::new()));
        // Both answers of the status multicall.
        let both = answer(&array(&format!(
            "<value><string>x</string></value>\n{}",
            array(&items)
        )));
        let (ident, infos) = identified(&both).expect("the multicall answer");
        assert_eq!((ident.as_str(), infos.len()), ("x", 2));
    }

    #[test]
    fn other_shapes_are_left_to_the_generic_path() {
        let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>6</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>SHUTDOWN_STATE</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
        assert_eq!(process_infos(fault), None);
        assert_eq!(
            all_process_info("m", 200, fault).map_err(|e| e.fault_code()),
            Err(Some(6))
        );
        // A required field of another type: the generic path names the shape.
        let odd = answer(&array(
            &process("a", 1, "d").replace("<int>20</int>", "<string>20</string>"),
        ));
        assert_eq!(process_infos(&odd), None);
        assert!(matches!(
            all_process_info("m", 200, &odd),
            Err(Error::Transport(_))
        ));
        // Trailing garbage after the document.
        let text = answer(&array(&process("a", 1, "d"))) + "<x/>";
        assert_eq!(process_infos(&text), None);
    }
}
