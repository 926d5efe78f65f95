//! The answers that carry `getAllProcessInfo`'s array, decoded straight from quick-xml's
//! events into [`ProcessInfo`]s: no tree of values, no map per process. This is the one
//! answer that grows with the cluster (about 1.2 KB of XML per program); decoding it through
//! dxr's generic values costs several times more (docs/supervisord.md §8). The decoder reads
//! from any buffered source: an answer in memory (`mup ctl status`), or one still arriving
//! (the exporter decodes each piece while the daemon writes the next). Anything not of the
//! expected shape (a fault, a fault inside a multicall, a field of another type) is
//! `None` here, and decoded again by the generic path, which names the problem.

use super::{Client, ProcessInfo, Result};
use dxr::Value;
use quick_xml::events::Event;
use quick_xml::name::QName;
use quick_xml::Reader;
use std::collections::BTreeMap;
use std::io::BufRead;

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
    read_process_infos(text.as_bytes())
}

/// The same, read from `source` as it comes: an answer still arriving is decoded as far as it
/// has come (the exporter hands it the daemon's answer piece by piece).
pub(crate) fn read_process_infos(source: impl BufRead) -> Option<Vec<ProcessInfo>> {
    let mut r = Answer::new(source);
    r.open()?;
    let infos = r.array_of_infos()?;
    r.close()?;
    Some(infos)
}

/// The identification and process infos of the multicall
/// [`Client::identification_and_infos`] makes, or `None` when it is not one of both.
fn identified(text: &str) -> Option<(String, Vec<ProcessInfo>)> {
    let mut r = Answer::new(text.as_bytes());
    r.open()?;
    r.start(Tag::Array)?;
    r.start(Tag::Data)?;
    r.start(Tag::Value)?;
    let ident = r.scalar()?.into_string()?;
    r.start(Tag::Value)?;
    let infos = r.array_of_infos()?;
    r.end(Tag::Value)?;
    r.end(Tag::Data)?;
    r.end(Tag::Array)?;
    r.close()?;
    Some((ident, infos))
}

/// The elements of an XML-RPC answer the decoder tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    MethodResponse,
    Params,
    Param,
    Value,
    Array,
    Data,
    Struct,
    Member,
    Name,
    String,
    Int,
    Other,
}

impl Tag {
    fn of(name: QName) -> Tag {
        match name.as_ref() {
            "methodResponse" => Tag::MethodResponse,
            "params" => Tag::Params,
            "param" => Tag::Param,
            "value" => Tag::Value,
            "array" => Tag::Array,
            "data" => Tag::Data,
            "struct" => Tag::Struct,
            "member" => Tag::Member,
            "name" => Tag::Name,
            "string" => Tag::String,
            "int" | "i4" => Tag::Int,
            _ => Tag::Other,
        }
    }
}

/// One event, as far as the decoder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Start(Tag),
    End(Tag),
    Empty(Tag),
    /// The XML declaration or a comment.
    Prolog,
    Eof,
    /// Text, CDATA, references, processing instructions.
    Other,
}

/// An answer read event by event, with the buffers its events and texts are read into (reused
/// from one to the next).
struct Answer<R> {
    r: Reader<R>,
    event: Vec<u8>,
    /// The name of the element last started: its text is read through its end.
    started: String,
    text: Vec<u8>,
}

impl<R: BufRead> Answer<R> {
    fn new(source: R) -> Answer<R> {
        let mut r = Reader::from_reader(source);
        r.config_mut().trim_text(true);
        Answer {
            r,
            event: Vec::new(),
            started: String::new(),
            text: Vec::new(),
        }
    }

    fn next(&mut self) -> Option<Item> {
        self.event.clear();
        Some(match self.r.read_event_into(&mut self.event).ok()? {
            Event::Start(e) => {
                self.started.clear();
                self.started.push_str(e.name().as_ref());
                Item::Start(Tag::of(e.name()))
            }
            Event::End(e) => Item::End(Tag::of(e.name())),
            Event::Empty(e) => Item::Empty(Tag::of(e.name())),
            Event::Decl(_) | Event::Comment(_) => Item::Prolog,
            Event::Eof => Item::Eof,
            _ => Item::Other,
        })
    }

    fn start(&mut self, tag: Tag) -> Option<()> {
        (self.next()? == Item::Start(tag)).then_some(())
    }

    fn end(&mut self, tag: Tag) -> Option<()> {
        (self.next()? == Item::End(tag)).then_some(())
    }

    /// The raw text of the element just started, unescaped, through its end.
    fn text(&mut self) -> Option<String> {
        self.text.clear();
        let raw = self
            .r
            .read_text_into(QName(&self.started), &mut self.text)
            .ok()?;
        Some(quick_xml::escape::unescape(&raw).ok()?.into_owned())
    }

    /// Through `<methodResponse><params><param><value>`.
    fn open(&mut self) -> Option<()> {
        loop {
            match self.next()? {
                Item::Prolog => {}
                Item::Start(Tag::MethodResponse) => break,
                _ => return None,
            }
        }
        self.start(Tag::Params)?;
        self.start(Tag::Param)?;
        self.start(Tag::Value)
    }

    /// Through `</value></param></params></methodResponse>` and the end of the text.
    fn close(&mut self) -> Option<()> {
        for tag in [Tag::Value, Tag::Param, Tag::Params, Tag::MethodResponse] {
            self.end(tag)?;
        }
        (self.next()? == Item::Eof).then_some(())
    }

    /// `<array><data>` of `<value><struct>…</struct></value>`, through `</data></array>`.
    fn array_of_infos(&mut self) -> Option<Vec<ProcessInfo>> {
        self.start(Tag::Array)?;
        match self.next()? {
            Item::Empty(Tag::Data) => {
                self.end(Tag::Array)?;
                return Some(Vec::new());
            }
            Item::Start(Tag::Data) => {}
            _ => return None,
        }
        let mut infos = Vec::new();
        loop {
            match self.next()? {
                Item::Start(Tag::Value) => {
                    self.start(Tag::Struct)?;
                    infos.push(self.info()?);
                    self.end(Tag::Value)?;
                }
                Item::End(Tag::Data) => break,
                _ => return None,
            }
        }
        self.end(Tag::Array)?;
        Some(infos)
    }

    /// The value after `<value>`, through `</value>`; `None` for an array or a struct.
    fn scalar(&mut self) -> Option<Scalar> {
        let (tag, text) = match self.next()? {
            // An untyped value is a string.
            Item::End(Tag::Value) => return Some(Scalar::Text(String::new())),
            Item::Empty(tag) => (tag, String::new()),
            // Mixed untyped text (`Item::Other`) is left to the generic path.
            Item::Start(tag) => (tag, self.text()?),
            _ => return None,
        };
        self.end(Tag::Value)?;
        Some(match tag {
            Tag::String => Scalar::Text(text),
            Tag::Int => Scalar::Int(text.trim().parse().ok()?),
            Tag::Other => Scalar::Other,
            _ => return None,
        })
    }

    /// The members of one process's `<struct>`, through `</struct>`.
    fn info(&mut self) -> Option<ProcessInfo> {
        let mut fields: [Option<Scalar>; 12] = Default::default();
        loop {
            match self.next()? {
                Item::Start(Tag::Member) => {}
                Item::End(Tag::Struct) => break,
                _ => return None,
            }
            self.start(Tag::Name)?;
            let name = self.text()?;
            self.start(Tag::Value)?;
            let value = self.scalar()?;
            self.end(Tag::Member)?;
            if let Some(at) = FIELDS.iter().position(|n| *n == name) {
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
}

/// The members of a process's struct that [`ProcessInfo`] keeps, in its order.
const FIELDS: [&str; 12] = [
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

    /// The exporter decodes the daemon's answer while it arrives: split anywhere (inside a
    /// tag, an entity, a number), read a piece at a time, it decodes as the whole text does.
    #[test]
    fn an_answer_arriving_in_pieces_decodes_as_the_whole_text() {
        let items = process("a&amp;b &lt;c&gt;", 12, "pid 12, uptime 0:00:42")
            + &process("mongod-2", 0, " Not started &#233;\n");
        let text = answer(&array(&items));
        let whole = process_infos(&text).expect("the whole answer decodes");
        assert_eq!(whole.len(), 2);
        for size in [1, 2, 3, 7, 61, 4096] {
            let pieces = std::io::BufReader::with_capacity(size, text.as_bytes());
            assert_eq!(
                read_process_infos(pieces).as_ref(),
                Some(&whole),
                "in pieces of {size}"
            );
        }
        // Cut short: not an answer.
        let cut = &text.as_bytes()[..text.len() - 30];
        assert_eq!(read_process_infos(cut), None);
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
