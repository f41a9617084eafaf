//! `docs/protocol.md` and the crate agree: the kind table, the code tables,
//! every message's and the prescription's field tables (names, order and
//! encodings), the size constants and the worked examples are checked here
//! against the code. A change to either side without the other fails.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use pump_protocol::prescription::{
    SilencePolicy, MAX_BASAL_STEPS, MAX_DRUG_NAME_LEN, MAX_PRESCRIPTION_BODY_LEN,
    MAX_SIGNED_MESSAGE_LEN, MAX_SIGNED_PRESCRIPTION_LEN, PRESCRIPTION_FORMAT, SIGNATURE_LEN,
    SIGNING_DOMAIN,
};
use pump_protocol::*;
use serde::ser::{self, Serialize};

fn spec() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
}

/// Cells of a markdown table row, trimmed; `None` for other lines and for
/// separator rows.
fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let inner = line.strip_prefix('|')?.strip_suffix('|')?;
    let cells: Vec<String> = inner.split(" | ").map(|c| c.trim().to_owned()).collect();
    if cells
        .iter()
        .all(|c| c.chars().all(|ch| matches!(ch, '-' | '|' | ':')))
    {
        return None;
    }
    Some(cells)
}

fn unquote(cell: &str) -> &str {
    cell.trim_matches('`')
}

/// Table rows (after the header row) under each heading, keyed by the
/// heading text without its `#`s.
fn tables(spec: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut heading = String::new();
    let mut in_table = false;
    for line in spec.lines() {
        if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_owned();
            in_table = false;
            continue;
        }
        match cells(line) {
            Some(row) if in_table => out.entry(heading.clone()).or_default().push(row),
            // The first row is the header.
            Some(_) => in_table = true,
            None if line.trim().starts_with('|') => {}
            None => in_table = false,
        }
    }
    out
}

/// `major.minor`, as the spec writes a version.
fn version((major, minor): (u8, u8)) -> String {
    format!("{major}.{minor}")
}

fn class_name(class: MessageClass) -> &'static str {
    match class {
        MessageClass::Event => "event",
        MessageClass::Command => "command",
        MessageClass::Response => "response",
    }
}

#[test]
fn kind_table_matches_the_catalogue() {
    let tables = tables(&spec());
    let rows = tables.get("4.1 Kinds").expect("§4.1 has the kind table");
    let documented: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                unquote(&r[0]).to_owned(),
                unquote(&r[1]).to_owned(),
                r[2].clone(),
            )
        })
        .collect();
    let actual: Vec<(String, String, String)> = MessageKind::ALL
        .iter()
        .map(|k| {
            (
                format!("0x{:04X}", k.code()),
                k.name().to_owned(),
                class_name(k.class()).to_owned(),
            )
        })
        .collect();
    assert_eq!(documented, actual);
    for (row, kind) in rows.iter().zip(MessageKind::ALL) {
        assert_eq!(row[3], version(kind.since()), "since-version of {}", row[1]);
    }
    // Classes are grouped by the high byte, as §4.1 says.
    for k in MessageKind::ALL {
        let expected = match k.code() >> 8 {
            0x01 => MessageClass::Event,
            0x02 => MessageClass::Command,
            0x03 => MessageClass::Response,
            other => panic!("{} has class byte {other:#04x}", k.name()),
        };
        assert_eq!(k.class(), expected, "{}", k.name());
    }
}

macro_rules! check_code_enum {
    ($tables:expr, $section:literal, $ty:ident) => {{
        let heading = concat!($section, " `", stringify!($ty), "`");
        let rows = $tables
            .get(heading)
            .unwrap_or_else(|| panic!("no table under `{heading}`"));
        let documented: Vec<(u16, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r[0].parse().expect("numeric code"),
                    unquote(&r[1]).to_owned(),
                    r[3].clone(),
                )
            })
            .collect();
        let actual: Vec<(u16, String, String)> = $ty::ALL
            .iter()
            .map(|v| {
                let since = v.since().expect("a known code has a version");
                (v.code(), v.name().to_owned(), version(since))
            })
            .collect();
        assert_eq!(
            documented,
            actual,
            "{} (code, name, since)",
            stringify!($ty)
        );
        for (code, _, _) in &actual {
            assert_eq!($ty::from_code(*code).code(), *code);
        }
    }};
}

#[test]
fn code_tables_match_the_code_enums() {
    let tables = tables(&spec());
    check_code_enum!(tables, "4.2.1", PumpState);
    check_code_enum!(tables, "4.2.2", DeliveryKind);
    check_code_enum!(tables, "4.2.3", DeliveryOutcome);
    check_code_enum!(tables, "4.2.4", AlarmPriority);
    check_code_enum!(tables, "4.2.5", AlarmCode);
    check_code_enum!(tables, "4.2.6", ErrorCode);
}

/// §6.4's "What X.Y adds" lists name exactly the kinds and code values
/// whose `since()` is X.Y, for every released version after 1.0: each item
/// opens with the kind's name or `Enum::Name`.
#[test]
fn what_each_version_adds_matches_the_since_versions() {
    let spec = spec();
    for &released in RELEASED_VERSIONS.iter().filter(|&&v| v != (1, 0)) {
        let heading = format!("What {} adds", version(released));
        let start = spec
            .lines()
            .position(|l| l.starts_with('#') && l.trim_end().ends_with(&heading))
            .unwrap_or_else(|| panic!("no section `{heading}` in §6"));
        let documented: Vec<String> = spec
            .lines()
            .skip(start + 1)
            .take_while(|l| !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("- `"))
            .map(|item| item.split('`').next().unwrap_or_default().to_owned())
            .collect();
        let mut expected: Vec<String> = MessageKind::ALL
            .iter()
            .filter(|k| k.since() == released)
            .map(|k| k.name().to_owned())
            .collect();
        expected.extend(
            common::code_values()
                .iter()
                .filter(|v| v.since == released)
                .map(|v| format!("{}::{}", v.enum_name, v.name)),
        );
        let mut sorted = documented.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "§6.4 `{heading}`");
        assert!(!documented.is_empty(), "`{heading}` lists nothing");
    }
}

// ------------------------------------------------- shapes via serde --

/// Field lists of every struct serialized, in serialization order, with
/// each field's encoding in the spec's notation (§1.4).
#[derive(Default)]
struct Shapes {
    structs: BTreeMap<&'static str, Vec<(&'static str, String)>>,
    variants: BTreeMap<&'static str, BTreeMap<u32, &'static str>>,
}

#[derive(Debug)]
struct ShapeError(String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

impl ser::Error for ShapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// A serde serializer that returns the spec's encoding name of a value and
/// records the field lists of the structs inside it.
#[derive(Clone, Copy)]
struct Shaper<'a>(&'a RefCell<Shapes>);

struct Compound<'a> {
    shaper: Shaper<'a>,
    name: &'static str,
    first: Option<String>,
    fields: Vec<(&'static str, String)>,
    kind: CompoundKind,
}

enum CompoundKind {
    Seq,
    Struct,
    /// A struct variant, with its name (its fields are recorded under it).
    Variant(&'static str),
}

type R = Result<String, ShapeError>;

impl<'a> Compound<'a> {
    fn new(shaper: Shaper<'a>, name: &'static str, kind: CompoundKind) -> Self {
        Self {
            shaper,
            name,
            first: None,
            fields: Vec::new(),
            kind,
        }
    }

    fn finish(self) -> R {
        match self.kind {
            CompoundKind::Seq => Ok(format!("seq({})", self.first.as_deref().unwrap_or("?"))),
            CompoundKind::Struct => {
                let mut shapes = self.shaper.0.borrow_mut();
                let previous = shapes.structs.insert(self.name, self.fields.clone());
                if let Some(previous) = previous {
                    assert_eq!(previous, self.fields, "{} has one shape", self.name);
                }
                Ok(format!("struct({})", self.name))
            }
            CompoundKind::Variant(variant) => {
                self.shaper
                    .0
                    .borrow_mut()
                    .structs
                    .insert(variant, self.fields);
                Ok(format!("enum({})", self.name))
            }
        }
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = String;
    type Error = ShapeError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ShapeError> {
        let shape = value.serialize(self.shaper)?;
        self.first.get_or_insert(shape);
        Ok(())
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = String;
    type Error = ShapeError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ShapeError> {
        let shape = value.serialize(self.shaper)?;
        self.fields.push((key, shape));
        Ok(())
    }
    fn end(self) -> R {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = String;
    type Error = ShapeError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ShapeError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> R {
        self.finish()
    }
}

macro_rules! unsupported {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> R {
            Err(ShapeError(format!("the catalogue does not use {}", stringify!($method))))
        })*
    };
}

impl<'a> ser::Serializer for Shaper<'a> {
    type Ok = String;
    type Error = ShapeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = ser::Impossible<String, ShapeError>;
    type SerializeTupleStruct = ser::Impossible<String, ShapeError>;
    type SerializeTupleVariant = ser::Impossible<String, ShapeError>;
    type SerializeMap = ser::Impossible<String, ShapeError>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, _: bool) -> R {
        Ok("bool".into())
    }
    fn serialize_u8(self, _: u8) -> R {
        Ok("u8".into())
    }
    fn serialize_u16(self, _: u16) -> R {
        Ok("varint(u16)".into())
    }
    fn serialize_u32(self, _: u32) -> R {
        Ok("varint(u32)".into())
    }
    fn serialize_u64(self, _: u64) -> R {
        Ok("varint(u64)".into())
    }
    fn serialize_str(self, _: &str) -> R {
        Ok("string".into())
    }
    fn serialize_none(self) -> R {
        Ok("option(?)".into())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> R {
        Ok(format!("option({})", value.serialize(self)?))
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> R {
        self.0
            .borrow_mut()
            .variants
            .entry(name)
            .or_default()
            .insert(index, variant);
        Ok(format!("enum({name})"))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> R {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, ShapeError> {
        Ok(Compound::new(self, "", CompoundKind::Seq))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Compound<'a>, ShapeError> {
        Ok(Compound::new(self, name, CompoundKind::Struct))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, ShapeError> {
        self.0
            .borrow_mut()
            .variants
            .entry(name)
            .or_default()
            .insert(index, variant);
        Ok(Compound::new(self, name, CompoundKind::Variant(variant)))
    }

    unsupported!(
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> R {
        Err(ShapeError("newtype variants are not used".into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ShapeError> {
        Err(ShapeError("tuples are not used".into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ShapeError> {
        Err(ShapeError("tuple structs are not used".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ShapeError> {
        Err(ShapeError("tuple variants are not used".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ShapeError> {
        Err(ShapeError("maps are not used".into()))
    }
}

/// Serializes a message's payload struct through the [`Shaper`].
macro_rules! shape_message {
    ($message:expr, $shaper:expr, [$($variant:ident),* $(,)?]) => {
        match $message {
            $(Message::$variant(m) => m.serialize($shaper),)*
            Message::Unknown(_) => panic!("examples are of known kinds"),
        }
    };
}

/// A field row of the spec: `| # | field | encoding | meaning |`, with the
/// encoding cell's code-enum name (`` `E`: ``) dropped.
fn documented_fields(rows: &[Vec<String>]) -> Vec<(String, String)> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r[0], i.to_string(), "field numbers in order");
            let encoding = r[2].rsplit(": ").next().unwrap_or(&r[2]);
            (unquote(&r[1]).to_owned(), encoding.to_owned())
        })
        .collect()
}

fn same_encoding(documented: &str, actual: &str) -> bool {
    match actual.find("(?)") {
        // The example had `None` here, so only the outer type is known.
        Some(at) => documented.starts_with(&actual[..at]),
        None => documented == actual,
    }
}

fn assert_fields_match(what: &str, documented: &[(String, String)], actual: &[(&str, String)]) {
    let names: Vec<&str> = documented.iter().map(|(n, _)| n.as_str()).collect();
    let actual_names: Vec<&str> = actual.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, actual_names, "fields of {what}");
    for ((name, doc), (_, enc)) in documented.iter().zip(actual) {
        assert!(
            same_encoding(doc, enc),
            "{what}.{name}: the spec says {doc}, the code encodes {enc}"
        );
    }
}

#[test]
fn message_field_tables_match_the_payload_structs() {
    let spec = spec();
    let tables = tables(&spec);
    for &kind in MessageKind::ALL {
        let heading = format!("0x{:04X} `{}`", kind.code(), kind.name());
        let frame = common::example(kind).expect("example of every kind");
        let shapes = RefCell::new(Shapes::default());
        let outer = shape_message!(
            &frame.message,
            Shaper(&shapes),
            [
                StatusSnapshot,
                DeliveryRecord,
                PatientBolusRequested,
                PatientBolusGranted,
                PatientBolusDenied,
                AlarmRaised,
                AlarmAcknowledged,
                AlarmCleared,
                ReservoirLevel,
                ReservoirRefilled,
                BatteryState,
                AppFault,
                AppRestarted,
                LogGap,
                DeliveryDenied,
                AccessDenied,
                PrescriptionInstalled,
                PrescriptionRejected,
                ClockSet,
                PumpStateChanged,
                CommandAuthenticated,
                CommandRefused,
                RefillDiscrepancy,
                AccessDeniedRepeated,
                KernelStarted,
                ServiceOutlook,
                SelfTestFailed,
                GetStatus,
                InstallPrescription,
                ClinicianBolus,
                PatientBolusRequest,
                Refill,
                Suspend,
                Resume,
                AcknowledgeAlarm,
                ReadLog,
                SetClock,
                ClearFault,
                AuthenticatedCommand,
                GetServiceOutlook,
                Ack,
                Nack,
                LogChunkEnd,
            ]
        )
        .expect("shape");
        assert_eq!(outer, format!("struct({})", kind.name()));
        let actual = shapes.borrow().structs[kind.name()].clone();
        let section_start = spec
            .lines()
            .position(|l| l.trim_start_matches('#').trim() == heading)
            .unwrap_or_else(|| panic!("no section `{heading}` in §4.3"));
        match tables.get(&heading) {
            Some(rows) => assert_fields_match(kind.name(), &documented_fields(rows), &actual),
            None => {
                assert!(actual.is_empty(), "{} has fields but no table", kind.name());
                let says_empty = spec
                    .lines()
                    .skip(section_start)
                    .take(6)
                    .any(|l| l.starts_with("Empty payload"));
                assert!(says_empty, "{} should say it is empty", kind.name());
            }
        }
    }
}

#[test]
fn prescription_tables_match_the_body_structs() {
    let tables = tables(&spec());
    let shapes = RefCell::new(Shapes::default());
    let mut prescription = common::example_prescription();
    assert_eq!(
        prescription.serialize(Shaper(&shapes)).expect("shape"),
        "struct(Prescription)"
    );
    // Both silence policies, for the variant table.
    prescription.envelope.silence_policy = SilencePolicy::StopDelivery;
    prescription.serialize(Shaper(&shapes)).expect("shape");
    let shapes = shapes.into_inner();
    for name in [
        "Prescription",
        "Envelope",
        "Therapy",
        "BasalStep",
        "BolusProgram",
        "PatientBolusProgram",
    ] {
        let rows = tables
            .get(&format!("`{name}`"))
            .unwrap_or_else(|| panic!("no table for `{name}` in §5.3"));
        assert_fields_match(name, &documented_fields(rows), &shapes.structs[name]);
    }
    let rows = tables.get("`SilencePolicy`").expect("§5.3 SilencePolicy");
    let documented: BTreeMap<u32, String> = rows
        .iter()
        .map(|r| (r[0].parse().expect("index"), unquote(&r[1]).to_owned()))
        .collect();
    let actual: BTreeMap<u32, String> = shapes.variants["SilencePolicy"]
        .iter()
        .map(|(i, v)| (*i, (*v).to_owned()))
        .collect();
    assert_eq!(documented, actual);
    assert_eq!(
        shapes.structs["ContinueBasal"],
        vec![("rate_nl_per_h", "varint(u32)".to_owned())],
        "ContinueBasal's fields"
    );
    assert!(rows[1][2].starts_with("`rate_nl_per_h`: varint(u32)."));
}

#[test]
fn constant_tables_match_the_constants() {
    let spec = spec();
    let mut documented = BTreeMap::new();
    for row in spec.lines().filter_map(cells) {
        if row.len() == 3 && row[0].starts_with('`') {
            if let Ok(value) = row[1].parse::<usize>() {
                documented.insert(unquote(&row[0]).to_owned(), value);
            }
        }
    }
    let actual = [
        ("HEADER_LEN", HEADER_LEN),
        ("CRC_LEN", CRC_LEN),
        ("MAX_PAYLOAD_LEN", MAX_PAYLOAD_LEN),
        ("MAX_UNKNOWN_PAYLOAD_LEN", MAX_UNKNOWN_PAYLOAD_LEN),
        ("MAX_KNOWN_PAYLOAD_LEN", MAX_KNOWN_PAYLOAD_LEN),
        ("MAX_FRAME_LEN", MAX_FRAME_LEN),
        ("MAX_ENCODED_FRAME_LEN", MAX_ENCODED_FRAME_LEN),
        ("MAX_STREAM_FRAME_LEN", MAX_STREAM_FRAME_LEN),
        ("SIGNATURE_LEN", SIGNATURE_LEN),
        ("PRESCRIPTION_FORMAT", usize::from(PRESCRIPTION_FORMAT)),
        ("MAX_BASAL_STEPS", MAX_BASAL_STEPS),
        ("MAX_DRUG_NAME_LEN", MAX_DRUG_NAME_LEN),
        ("MAX_PRESCRIPTION_BODY_LEN", MAX_PRESCRIPTION_BODY_LEN),
        ("MAX_SIGNED_PRESCRIPTION_LEN", MAX_SIGNED_PRESCRIPTION_LEN),
        ("MAX_SIGNED_MESSAGE_LEN", MAX_SIGNED_MESSAGE_LEN),
        (
            "PRESCRIPTION_FORMAT_V2",
            usize::from(pump_protocol::prescription::PRESCRIPTION_FORMAT_V2),
        ),
        (
            "COMMAND_FORMAT",
            usize::from(pump_protocol::command_auth::COMMAND_FORMAT),
        ),
        (
            "MAX_COMMAND_PAYLOAD_LEN",
            pump_protocol::command_auth::MAX_COMMAND_PAYLOAD_LEN,
        ),
        (
            "MAX_COMMAND_BODY_LEN",
            pump_protocol::command_auth::MAX_COMMAND_BODY_LEN,
        ),
        (
            "MAX_SIGNED_COMMAND_LEN",
            pump_protocol::command_auth::MAX_SIGNED_COMMAND_LEN,
        ),
        (
            "MAX_SIGNED_COMMAND_MESSAGE_LEN",
            pump_protocol::command_auth::MAX_SIGNED_COMMAND_MESSAGE_LEN,
        ),
    ];
    for (name, value) in actual {
        assert_eq!(documented.get(name), Some(&value), "constant {name}");
    }
    assert_eq!(documented.len(), actual.len(), "{documented:?}");
}

#[test]
fn header_flags_domain_and_versions_match() {
    let spec = spec();
    let tables = tables(&spec);
    let layout = &tables["2.1 Layout"];
    let fields: Vec<(usize, &str)> = layout
        .iter()
        .take(8)
        .map(|r| (r[0].parse().expect("offset"), unquote(&r[2])))
        .collect();
    assert_eq!(
        fields,
        [
            (0, "magic"),
            (2, "version_major"),
            (3, "version_minor"),
            (4, "kind"),
            (6, "flags"),
            (7, "reserved"),
            (8, "sequence"),
            (12, "payload_len"),
        ]
    );
    assert!(layout[0][3].starts_with(&format!("`{:02x} {:02x}`", MAGIC[0], MAGIC[1])));
    let flags_table = &tables["2.2 Flags"];
    assert_eq!(
        unquote(&flags_table[0][1]),
        format!("0x{:02X}", flags::FROM_LOG)
    );
    assert_eq!(unquote(&flags_table[0][2]), "FROM_LOG");
    let domain_hex: Vec<String> = SIGNING_DOMAIN.iter().map(|b| format!("{b:02x}")).collect();
    assert!(spec.contains(&format!("`{}`", domain_hex.join(" "))));
    assert!(spec.contains(&format!(
        "`{}` followed by one `00` byte",
        std::str::from_utf8(&SIGNING_DOMAIN[..SIGNING_DOMAIN.len() - 1]).expect("ASCII")
    )));
    let released = &tables["6.2 Released versions"];
    let documented: Vec<String> = released.iter().map(|r| r[0].clone()).collect();
    let actual: Vec<String> = RELEASED_VERSIONS
        .iter()
        .map(|(major, minor)| format!("{major}.{minor}"))
        .collect();
    assert_eq!(documented, actual);
    assert!(spec.starts_with(&format!(
        "# Infusion-pump wire protocol, version {VERSION_MAJOR}.{VERSION_MINOR}\n"
    )));
    assert!(spec.contains(&format!(
        "check value, the CRC of the ASCII bytes `123456789`, is `0x{:08X}`",
        CRC32C.checksum(b"123456789")
    )));
}

#[test]
fn error_tables_name_every_error() {
    let tables = tables(&spec());
    let frame_errors: Vec<&str> = tables["7.1 `FrameError`"]
        .iter()
        .map(|r| unquote(&r[0]))
        .collect();
    let samples = [
        FrameError::TooLong { len: 0 },
        FrameError::Truncated {
            needed: 0,
            available: 0,
        },
        FrameError::BadMagic { found: [0; 2] },
        FrameError::UnsupportedVersion { major: 0, minor: 0 },
        FrameError::LengthMismatch {
            declared: 0,
            actual: 0,
        },
        FrameError::BadCrc {
            expected: 0,
            found: 0,
        },
        FrameError::Payload {
            kind: 0,
            error: PayloadError::Malformed,
        },
        FrameError::Cobs,
        FrameError::BufferTooSmall { needed: 0 },
    ];
    let names: Vec<String> = samples
        .iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(frame_errors, names);
    let mapping = &tables["7.3 Errors on the wire"];
    for error in &samples {
        let name = format!("{error:?}");
        let row = mapping
            .iter()
            .find(|r| name.starts_with(unquote(&r[0])))
            .or_else(|| mapping.iter().find(|r| r[0] == "every other"))
            .expect("mapped");
        assert_eq!(unquote(&row[1]), error.error_code().name(), "{name}");
    }
    let payload_errors: Vec<&str> = tables["7.2 `PayloadError`"]
        .iter()
        .map(|r| unquote(&r[0]))
        .collect();
    let names: Vec<String> = [
        PayloadError::Truncated,
        PayloadError::TrailingBytes,
        PayloadError::Malformed,
        PayloadError::TooLarge,
    ]
    .iter()
    .map(|e| format!("{e:?}"))
    .collect();
    assert_eq!(payload_errors, names);
}

/// The worked examples of §3.4 and §8 are 1.0 frames (a 1.1 sender differs
/// only in the minor byte and the CRC); §8's 1.1 example is the frame of the
/// code value 1.1 added.
#[test]
fn worked_examples_match_the_encoder() {
    let spec = spec();
    let frame = common::example(MessageKind::DeliveryRecord).expect("example");
    let bytes = common::encode_as(&frame, (1, 0));
    assert!(spec.contains(&common::annotate(&bytes)), "§8 example");
    let unconfirmed =
        common::added_code_example("DeliveryOutcome", "Unconfirmed").expect("example");
    let bytes = common::encode_as(&unconfirmed, (1, 1));
    assert!(spec.contains(&common::annotate(&bytes)), "§8 1.1 example");
    let mut stream = Vec::new();
    for kind in [MessageKind::DeliveryRecord, MessageKind::AlarmRaised] {
        let frame = common::example(kind).expect("example");
        stream.extend(common::stream_item(&common::encode_as(&frame, (1, 0))));
    }
    assert!(
        spec.contains(&format!(
            "back to back ({} bytes):\n\n```text\n{}\n```",
            stream.len(),
            common::hex_rows(&stream)
        )),
        "§3.4 example"
    );
    let second = 1 + stream[1..].iter().position(|&b| b == 0).expect("delimiter") + 2;
    assert!(spec.contains(&format!("the second at offset {second}.")));
}
