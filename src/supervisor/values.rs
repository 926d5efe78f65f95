//! supervisord's XML-RPC values: the body of a call, and answers decoded into typed values
//! (process infos, group results, faults). No I/O.

use super::{infos, Error, ProcessInfo, Result};
use dxr::{FaultResponse, MethodCall, MethodResponse, Value};
use std::collections::BTreeMap;

/// The results of a `system.multicall` answer, each a value or a fault.
pub(super) fn multicall_results(v: &Value) -> Result<Vec<Result<Value>>> {
    Ok(as_array(v)?
        .iter()
        .map(|item| match item {
            Value::Struct(st) if st.contains_key("faultCode") => Err(Error::Fault {
                code: st.get("faultCode").map(as_int).transpose()?.unwrap_or(0) as i32,
                message: st
                    .get("faultString")
                    .map(as_string)
                    .transpose()?
                    .unwrap_or_default(),
            }),
            other => Ok(other.clone()),
        })
        .collect())
}

/// The process infos of the daemon's answer to `getAllProcessInfo` (`method`): HTTP `status`
/// and its body `text`, decoded directly, or through the generic values when it is not a
/// plain array of them (a fault: that path names it).
pub(crate) fn all_process_info(method: &str, status: u16, text: &str) -> Result<Vec<ProcessInfo>> {
    if let Some(infos) = (status == 200)
        .then(|| infos::process_infos(text))
        .flatten()
    {
        return Ok(infos);
    }
    process_infos(&decode_answer(method, status, text)?)
}

/// The XML body of a call of `method` with `params`.
pub(crate) fn encode_call(method: &str, params: Vec<Value>) -> Result<String> {
    MethodCall {
        name: method.into(),
        params,
    }
    .to_xml()
    .map_err(|e| Error::Transport(e.to_string()))
}

/// The value of the daemon's answer to `method`: HTTP `status` and its body `text`.
pub(crate) fn decode_answer(method: &str, status: u16, text: &str) -> Result<Value> {
    match status {
        200 => {}
        401 => return Err(Error::Unauthorized),
        code => return Err(Error::Transport(format!("HTTP {code} from supervisord"))),
    }
    match MethodResponse::from_xml(text) {
        Ok(r) => Ok(r.value),
        Err(_) => match FaultResponse::from_xml(text) {
            Ok(f) => Err(Error::Fault {
                code: f.fault.code(),
                message: f.fault.string().to_string(),
            }),
            Err(e) => Err(Error::Transport(format!(
                "unreadable answer to {method}: {e}"
            ))),
        },
    }
}

pub(super) fn clamp(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

pub(super) fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

pub(super) fn shape(what: &str) -> Error {
    Error::Transport(format!("unexpected answer shape from {what}"))
}

pub(super) fn as_struct(v: &Value) -> Result<&BTreeMap<String, Value>> {
    match v {
        Value::Struct(m) => Ok(m),
        _ => Err(shape("a struct")),
    }
}

pub(super) fn as_array(v: &Value) -> Result<&Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(shape("an array")),
    }
}

pub(super) fn as_int(v: &Value) -> Result<i64> {
    match v {
        Value::Integer(i) => Ok(i64::from(*i)),
        _ => Err(shape("an integer")),
    }
}

pub(super) fn as_bool(v: &Value) -> Result<bool> {
    match v {
        Value::Boolean(b) => Ok(*b),
        _ => Err(shape("a boolean")),
    }
}

pub(super) fn as_string(v: &Value) -> Result<String> {
    match v {
        Value::String(t) => Ok(t.clone()),
        _ => Err(shape("a string")),
    }
}

pub(super) fn int(m: &BTreeMap<String, Value>, key: &str) -> Result<i64> {
    m.get(key)
        .map(as_int)
        .transpose()?
        .ok_or_else(|| shape(key))
}

pub(super) fn string(m: &BTreeMap<String, Value>, key: &str) -> Result<String> {
    m.get(key)
        .map(as_string)
        .transpose()?
        .ok_or_else(|| shape(key))
}

pub(super) fn process_info(v: &Value) -> Result<ProcessInfo> {
    let m = as_struct(v)?;
    Ok(ProcessInfo {
        name: string(m, "name")?,
        group: string(m, "group")?,
        state: int(m, "state")? as i32,
        statename: string(m, "statename")?,
        pid: int(m, "pid")? as u32,
        start: int(m, "start")?,
        stop: int(m, "stop")?,
        now: int(m, "now")?,
        spawnerr: string(m, "spawnerr").unwrap_or_default(),
        exitstatus: int(m, "exitstatus").unwrap_or(0),
        description: string(m, "description").unwrap_or_default(),
        logfile: string(m, "stdout_logfile").unwrap_or_default(),
    })
}

/// The array `getAllProcessInfo` returns (also inside a multicall answer).
pub fn process_infos(v: &Value) -> Result<Vec<ProcessInfo>> {
    as_array(v)?.iter().map(process_info).collect()
}
