//! `pumpctl cmd sign`: one signed programmer command as an
//! `AuthenticatedCommand` stream item (SR-HOST-015). The signing itself is
//! [`crate::cmdsign`]'s; this module turns command-line input into the
//! command's message, refusing input the pump could only refuse.

use std::fmt;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use ed25519_dalek::SigningKey;
use pump_protocol::command_auth::Signer;
use pump_protocol::{
    AcknowledgeAlarm, AlarmCode, ClearFault, ClinicianBolus, Message, PatientBolusRequest, Refill,
    Resume, SetClock, Suspend,
};

use crate::cmdsign::{self, signer_name};
use crate::error::{Error, Result};
use crate::units::MS_PER_MIN;

/// `pumpctl cmd …`.
#[derive(Subcommand)]
pub enum CmdCommand {
    /// Sign a programmer command and write its AuthenticatedCommand frame.
    #[command(after_help = SIGN_HELP)]
    Sign(SignArgs),
}

const SIGN_HELP: &str = "Examples:
  pumpctl cmd sign --key clinic.key --signer clinic --device-id 0x00C0FFEE --out suspend.bin suspend
  pumpctl cmd sign --key ptm.key --signer ptm --device-id 0x00C0FFEE patient-bolus
  pumpctl cmd sign --simulator-key --signer clinic --device-id 0x00C0FFEE \\
      refill --withdrawn-ml 2.5 --added-ml 20 --concentration-ug-per-ml 2000

The output is one stream-encoded frame (0x00 COBS 0x00) carrying
postcard(CommandBody{format, device_id, signer, counter, kind, payload}) and the
Ed25519 signature over the command signing domain and that body; without --out
it is printed as hex. The clinic signs clinician-bolus, refill, suspend, resume,
ack, set-clock and clear-fault; the patient's programmer (ptm) signs
patient-bolus and ack. The counter defaults to the current UTC time in ms: the
pump takes only a counter above the last one it accepted from the signer, so if
the host clock went back, set it right or give --counter above the last
CommandAuthenticated counter in the pump's log.
ALARM: motor-stall, occlusion, reservoir-empty, envelope-integrity,
dosing-watchdog, reservoir-low, battery-replacement, app-fault, refill-due,
refill-discrepancy.";

/// Who signs, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignerArg {
    /// The clinic's programmer (a clinic key the board trusts).
    Clinic,
    /// The patient's own therapy manager (the key the prescription pairs).
    Ptm,
}

impl SignerArg {
    /// The protocol's signer.
    pub fn signer(self) -> Signer {
        match self {
            Self::Clinic => Signer::Clinic,
            Self::Ptm => Signer::PatientProgrammer,
        }
    }
}

/// `pumpctl cmd sign`.
#[derive(Args)]
#[command(group(ArgGroup::new("key_source").required(true).args(["key", "simulator_key"])))]
pub struct SignArgs {
    /// Private key file of the signer (from `pumpctl keygen`).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Sign with the simulator's TEST-ONLY key of the signer (its seed is
    /// public: only for the simulator and the QEMU board, never a real pump).
    #[arg(long)]
    pub simulator_key: bool,
    /// Who signs: the clinic or the patient's programmer (PTM).
    #[arg(long, value_enum)]
    pub signer: SignerArg,
    /// Device id of the implant (decimal or 0x hex), as read from the implant.
    #[arg(long, value_parser = parse_u32)]
    pub device_id: u32,
    /// Counter, above the last one the pump accepted from this signer
    /// (default: the current UTC time in ms).
    #[arg(long)]
    pub counter: Option<u64>,
    /// Frame sequence number (the pump echoes it in its Ack or Nack).
    #[arg(long, default_value_t = 1)]
    pub sequence: u32,
    /// Output file (binary stream item); without it the frame is printed as hex.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: CommandArg,
}

/// The commands a programmer signs.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum CommandArg {
    /// A clinician bolus (clinic).
    ClinicianBolus {
        /// Dose in µg.
        #[arg(long)]
        dose_ug: u32,
        /// Delivered over this many minutes.
        #[arg(long)]
        duration_min: u32,
    },
    /// A patient bolus request (ptm).
    PatientBolus,
    /// Suspend therapy (clinic).
    Suspend,
    /// Resume therapy (clinic).
    Resume,
    /// Record a refill (clinic).
    Refill {
        /// Residual volume withdrawn, mL (up to 6 decimals).
        #[arg(long)]
        withdrawn_ml: String,
        /// Volume filled, mL (up to 6 decimals).
        #[arg(long)]
        added_ml: String,
        /// Concentration of the drug filled, µg/mL.
        #[arg(long)]
        concentration_ug_per_ml: u32,
    },
    /// Acknowledge (silence) an alarm (clinic or ptm).
    Ack {
        /// The alarm, e.g. reservoir-low.
        #[arg(long)]
        code: String,
    },
    /// Clear a latched fault whose cause is gone (clinic).
    ClearFault {
        /// The alarm, e.g. motor-stall.
        #[arg(long)]
        code: String,
    },
    /// Set the pump's clock (clinic).
    SetClock {
        /// The new UTC time, Unix ms.
        #[arg(long)]
        utc_ms: u64,
    },
}

/// Command-line input no pump would carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputError {
    /// `--dose-ug 0`.
    ZeroDose,
    /// `--duration-min 0`.
    ZeroDuration,
    /// A duration beyond the protocol's 32-bit milliseconds.
    DurationTooLong {
        /// The minutes given.
        minutes: u32,
    },
    /// A volume that is not a number of mL that fits 32 bits of nL.
    Volume {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// `--concentration-ug-per-ml 0`.
    ZeroConcentration,
    /// An alarm name the protocol does not define.
    UnknownAlarm {
        /// What was given.
        name: String,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroDose => f.write_str("--dose-ug 0: a bolus must be above 0 µg"),
            Self::ZeroDuration => f.write_str("--duration-min 0: a bolus takes at least 1 min"),
            Self::DurationTooLong { minutes } => write!(
                f,
                "--duration-min {minutes}: at most {} min (the protocol's 32-bit milliseconds)",
                u64::from(u32::MAX) / MS_PER_MIN
            ),
            Self::Volume { flag, value } => write!(
                f,
                "{flag} `{value}`: expected a volume in mL such as 20 or 2.5 (up to 6 decimals, at most 4294.967295)"
            ),
            Self::ZeroConcentration => f.write_str(
                "--concentration-ug-per-ml 0: the concentration of the drug filled must be above 0",
            ),
            Self::UnknownAlarm { name } => {
                let names: Vec<String> = AlarmCode::ALL
                    .iter()
                    .map(|c| crate::script::kebab(c.name()))
                    .collect();
                write!(f, "--code `{name}`: expected one of {}", names.join(", "))
            }
        }
    }
}

impl std::error::Error for InputError {}

/// Parses a 32-bit number, decimal or `0x` hex.
pub fn parse_u32(s: &str) -> std::result::Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(&hex.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    parsed.map_err(|_| format!("`{s}`: expected a 32-bit number (decimal or 0x hex)"))
}

fn alarm(name: &str) -> std::result::Result<AlarmCode, InputError> {
    crate::script::alarm_from_name(name).ok_or_else(|| InputError::UnknownAlarm {
        name: name.to_string(),
    })
}

fn volume(flag: &'static str, value: &str) -> std::result::Result<u32, InputError> {
    crate::units::parse_ml_to_nl(value).ok_or_else(|| InputError::Volume {
        flag,
        value: value.to_string(),
    })
}

/// The protocol message of a command.
pub fn message(command: &CommandArg) -> std::result::Result<Message, InputError> {
    Ok(match command {
        CommandArg::ClinicianBolus {
            dose_ug,
            duration_min,
        } => {
            if *dose_ug == 0 {
                return Err(InputError::ZeroDose);
            }
            if *duration_min == 0 {
                return Err(InputError::ZeroDuration);
            }
            let duration_ms =
                u32::try_from(u64::from(*duration_min) * MS_PER_MIN).map_err(|_| {
                    InputError::DurationTooLong {
                        minutes: *duration_min,
                    }
                })?;
            Message::ClinicianBolus(ClinicianBolus {
                dose_ug: *dose_ug,
                duration_ms,
            })
        }
        CommandArg::PatientBolus => Message::PatientBolusRequest(PatientBolusRequest {}),
        CommandArg::Suspend => Message::Suspend(Suspend {}),
        CommandArg::Resume => Message::Resume(Resume {}),
        CommandArg::Refill {
            withdrawn_ml,
            added_ml,
            concentration_ug_per_ml,
        } => {
            if *concentration_ug_per_ml == 0 {
                return Err(InputError::ZeroConcentration);
            }
            Message::Refill(Refill {
                withdrawn_volume_nl: volume("--withdrawn-ml", withdrawn_ml)?,
                added_volume_nl: volume("--added-ml", added_ml)?,
                concentration_ug_per_ml: *concentration_ug_per_ml,
            })
        }
        CommandArg::Ack { code } => {
            Message::AcknowledgeAlarm(AcknowledgeAlarm { code: alarm(code)? })
        }
        CommandArg::ClearFault { code } => Message::ClearFault(ClearFault { code: alarm(code)? }),
        CommandArg::SetClock { utc_ms } => Message::SetClock(SetClock {
            utc_time_ms: *utc_ms,
        }),
    })
}

/// What `cmd sign` produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCommand {
    /// The stream-encoded `AuthenticatedCommand` frame.
    pub frame: Vec<u8>,
    /// The counter it carries.
    pub counter: u64,
    /// The public key that verifies it.
    pub public_key: [u8; 32],
    /// The inner command's name.
    pub kind: &'static str,
}

fn signing_key(args: &SignArgs) -> Result<SigningKey> {
    match (&args.key, args.simulator_key) {
        (Some(path), false) => crate::keys::load_private(path),
        (None, true) => Ok(match args.signer {
            SignerArg::Clinic => crate::board::simulator_test_key(),
            SignerArg::Ptm => crate::board::simulator_ptm_key(),
        }),
        // clap requires exactly one of the two.
        _ => Err(Error(
            "give exactly one of --key FILE or --simulator-key".into(),
        )),
    }
}

/// Signs the command `args` describe.
pub fn sign(args: &SignArgs) -> Result<SignedCommand> {
    let message = message(&args.command).map_err(|e| Error(e.to_string()))?;
    let signer = args.signer.signer();
    let kind = message.kind().map_or("command", |k| k.name());
    // Checked before the key is read or the clock consulted: a command the
    // signer may not sign is refused whatever else is wrong.
    cmdsign::command_body(&message, signer, args.device_id, args.counter.unwrap_or(1))
        .map_err(|e| Error(format!("{} not signed: {e}", kind)))?;
    let key = signing_key(args)?;
    let counter = match args.counter {
        Some(counter) => counter,
        None => cmdsign::counter_now().map_err(|e| Error(e.to_string()))?,
    };
    let frame = cmdsign::authenticated_command_frame(
        &message,
        signer,
        args.device_id,
        counter,
        &key,
        args.sequence,
    )
    .map_err(|e| Error(format!("{kind} not signed: {e}")))?;
    Ok(SignedCommand {
        frame,
        counter,
        public_key: key.verifying_key().to_bytes(),
        kind,
    })
}

/// Runs `pumpctl cmd sign`: writes `--out` or returns the hex; the text to
/// print either way.
pub fn run_sign(args: &SignArgs) -> Result<String> {
    let signed = sign(args)?;
    let Some(out) = &args.out else {
        return Ok(format!("{}\n", crate::keys::hex(&signed.frame)));
    };
    crate::error::write_file(out, &signed.frame)?;
    Ok(format!(
        "signed {} as {} for device {:#010x}, counter {}, with key {}; wrote {} ({} bytes)\n",
        signed.kind,
        signer_name(args.signer.signer()),
        args.device_id,
        signed.counter,
        crate::keys::hex(&signed.public_key),
        out.display(),
        signed.frame.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_host_015_input_the_pump_could_only_refuse_is_refused_here() {
        // Verifies: SR-HOST-015
        let bolus = |dose_ug, duration_min| {
            message(&CommandArg::ClinicianBolus {
                dose_ug,
                duration_min,
            })
        };
        assert_eq!(bolus(0, 10), Err(InputError::ZeroDose));
        assert_eq!(bolus(10, 0), Err(InputError::ZeroDuration));
        assert_eq!(
            bolus(10, 71_583),
            Err(InputError::DurationTooLong { minutes: 71_583 })
        );
        assert_eq!(
            bolus(150, 10),
            Ok(Message::ClinicianBolus(ClinicianBolus {
                dose_ug: 150,
                duration_ms: 600_000
            }))
        );
        let refill = |withdrawn: &str, conc| {
            message(&CommandArg::Refill {
                withdrawn_ml: withdrawn.into(),
                added_ml: "20".into(),
                concentration_ug_per_ml: conc,
            })
        };
        assert_eq!(
            refill("2.5", 2000),
            Ok(Message::Refill(Refill {
                withdrawn_volume_nl: 2_500_000,
                added_volume_nl: 20_000_000,
                concentration_ug_per_ml: 2000
            }))
        );
        assert_eq!(refill("2.5", 0), Err(InputError::ZeroConcentration));
        assert!(matches!(
            refill("2,5", 2000),
            Err(InputError::Volume {
                flag: "--withdrawn-ml",
                ..
            })
        ));
        let err = message(&CommandArg::Ack {
            code: "fire".into(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("motor-stall"), "{err}");
        assert_eq!(
            message(&CommandArg::ClearFault {
                code: "refill-discrepancy".into()
            }),
            Ok(Message::ClearFault(ClearFault {
                code: AlarmCode::RefillDiscrepancy
            }))
        );
    }
}
