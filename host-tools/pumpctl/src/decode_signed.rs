//! What `decode` shows inside the signed payloads of programmer frames: the
//! format and pairing of an `InstallPrescription` (SR-HOST-018), the
//! signer, counter and command of an `AuthenticatedCommand`. Decoded as
//! sent and **not verified**: only the pump's verdict (its `Ack`, `Nack`
//! or log event) says whether the signature held.

use pump_protocol::command_auth::{decode_command_body, split_signed_command, Signer};
use pump_protocol::prescription::{decode_body_with_pairing, split_signed};
use pump_protocol::{AuthenticatedCommand, InstallPrescription, Message};
use serde_json::{json, Map, Value};

/// Adds the prescription's format and pairing to `map`.
pub fn install_fields(m: &InstallPrescription, map: &mut Map<String, Value>) {
    let decoded =
        split_signed(&m.signed_prescription).and_then(|parts| decode_body_with_pairing(parts.body));
    match decoded {
        Ok((prescription, pairing)) => {
            map.insert("format".into(), json!(prescription.format));
            map.insert(
                "ptm_public_key".into(),
                pairing
                    .ptm_public_key
                    .map_or(Value::Null, |k| json!(crate::keys::hex(&k))),
            );
            let c = pairing.clinician_bolus;
            map.insert("clinician_bolus_max_per_24h".into(), json!(c.max_per_24h));
            map.insert(
                "clinician_bolus_min_interval_ms".into(),
                json!(c.min_interval_ms),
            );
        }
        Err(e) => {
            map.insert("body".into(), json!(format!("undecodable ({e:?})")));
        }
    }
}

/// Adds the command body's device, signer, counter and command to `map`.
/// `render` gives the wrapped command's fields (the decoder's own
/// `message_fields`, passed in so this module does not import the decoder).
pub fn command_fields(
    m: &AuthenticatedCommand,
    map: &mut Map<String, Value>,
    render: impl Fn(&Message) -> (String, Map<String, Value>),
) {
    let body =
        split_signed_command(&m.signed_command).and_then(|parts| decode_command_body(parts.body));
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            map.insert("body".into(), json!(format!("undecodable ({e:?})")));
            return;
        }
    };
    map.insert("device_id".into(), json!(body.device_id));
    let signer = Signer::from_code(body.signer).map_or_else(
        || format!("Other({})", body.signer),
        |s| crate::cmdsign::signer_name(s).to_string(),
    );
    map.insert("signer".into(), json!(signer));
    map.insert("counter".into(), json!(body.counter));
    map.insert("command_kind".into(), json!(body.kind));
    match Message::decode_payload(body.kind, &body.payload) {
        Ok(inner) => {
            let (_, fields) = render(&inner);
            map.insert("command".into(), Value::Object(fields));
        }
        Err(_) => {
            map.insert("command".into(), json!(crate::keys::hex(&body.payload)));
        }
    }
}
