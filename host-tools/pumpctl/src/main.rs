//! `pumpctl` command line. Every command's `--help` shows an example.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use pumpctl::error::{Error, Result};
use pumpctl::{bail, board, decode, druglib, keys, rx, sign};

#[derive(Parser)]
#[command(
    name = "pumpctl",
    version,
    about = "Host tool for the implantable infusion pump: simulate, decode, check and sign prescriptions, report",
    after_help = "Start here:\n  pumpctl demo                      simulate 90 days of intrathecal baclofen in a few seconds\n  pumpctl rx check examples/baclofen-flex.toml\n  pumpctl decode pumpctl-demo/telemetry.log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a shipped example (baclofen, flex dosing, boluses, a refill, 90 days).
    #[command(after_help = "Example:\n  pumpctl demo\n  pumpctl demo --out /tmp/demo")]
    Demo(DemoArgs),
    /// Prescription tools: check against the board and the drug library, sign.
    #[command(subcommand)]
    Rx(RxCommand),
    /// Generate a clinic signing key pair.
    #[command(
        after_help = "Example:\n  pumpctl keygen --out clinic.key     # writes clinic.key (0600) and clinic.key.pub"
    )]
    Keygen(KeygenArgs),
    /// Decode a telemetry frame stream (file, stdin or serial port).
    #[command(
        after_help = "Examples:\n  pumpctl decode pumpctl-demo/telemetry.log\n  pumpctl decode pumpctl-demo/telemetry.log --json | head\n  cat telemetry.log | pumpctl decode - --csv > events.csv\n  pumpctl decode serial:/dev/ttyACM0@115200 --follow"
    )]
    Decode(DecodeArgs),
}

#[derive(Subcommand)]
enum RxCommand {
    /// Validate a prescription TOML against the hardware limits and the drug library.
    #[command(
        after_help = "Example:\n  pumpctl rx check examples/morphine.toml\n\nEvery problem names its TOML field, e.g. basal.steps[3].rate_ug_per_day.\nExit status: 0 no errors (warnings allowed), 1 errors."
    )]
    Check(RxCheckArgs),
    /// Sign a prescription and write the InstallPrescription frame.
    #[command(
        after_help = "Example:\n  pumpctl rx sign examples/baclofen-flex.toml --key clinic.key --device 0x00C0FFEE --serial 2 --out rx2.bin\n\nThe output is one stream-encoded frame (0x00 COBS 0x00) carrying\npostcard(Prescription) || Ed25519 signature over the signing domain and body."
    )]
    Sign(RxSignArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "pumpctl-demo")]
    out: PathBuf,
}

#[derive(Args)]
struct RxCheckArgs {
    /// Prescription TOML.
    rx: PathBuf,
}

#[derive(Args)]
struct RxSignArgs {
    /// Prescription TOML.
    rx: PathBuf,
    /// Private key file (from `pumpctl keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Device id of the implant (decimal or 0x hex), as read from the implant.
    #[arg(long, value_parser = parse_u32)]
    device: u32,
    /// Prescription serial: must be above the installed one.
    #[arg(long)]
    serial: u32,
    /// Output file (default: RX stem + `-<serial>.install.bin`).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct KeygenArgs {
    /// Private key file to write (the public key goes to KEY.pub).
    #[arg(long, default_value = "clinic.key")]
    out: PathBuf,
}

#[derive(Args)]
struct DecodeArgs {
    /// FILE, `-` for stdin, or `serial:PORT[@BAUD]`.
    #[arg(default_value = "-")]
    input: String,
    /// One JSON object per line.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header row.
    #[arg(long)]
    csv: bool,
    /// Keep reading as data arrives (serial port or growing file).
    #[arg(long)]
    follow: bool,
}

fn parse_u32(s: &str) -> std::result::Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(&hex.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    parsed.map_err(|_| format!("`{s}`: expected a 32-bit number (decimal or 0x hex)"))
}

fn main() -> ExitCode {
    // Contract: no panics or backtraces reach the user. Should a bug panic
    // anyway, say so in one line.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("pumpctl: internal error (please report): {msg}");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pumpctl: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo(&args),
        Command::Rx(RxCommand::Check(args)) => rx_check(&args),
        Command::Rx(RxCommand::Sign(args)) => rx_sign(&args),
        Command::Keygen(args) => keygen(&args),
        Command::Decode(args) => decode_cmd(&args),
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly.
fn out_result(r: std::io::Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error(format!("cannot write output: {e}"))),
    }
}

fn demo(_args: &DemoArgs) -> Result<ExitCode> {
    bail!("demo: not built yet")
}

fn rx_check(args: &RxCheckArgs) -> Result<ExitCode> {
    let file = rx::load(&args.rx)?;
    let library = druglib::DrugLibrary::builtin()?;
    let (report, _) = rx::check(
        &file,
        &board::hardware_limits(),
        &library,
        board::SIM_DEVICE_ID,
        1,
        0,
    );
    let mut out = std::io::stdout().lock();
    let mut text = format!("{}:\n", args.rx.display());
    for line in &report.summary {
        text.push_str(line);
        text.push('\n');
    }
    for p in &report.problems {
        text.push_str(&format!("{p}\n"));
    }
    let errors = report
        .problems
        .iter()
        .filter(|p| p.severity == rx::Severity::Error)
        .count();
    let warnings = report.problems.len() - errors;
    text.push_str(&format!(
        "{}: {errors} error(s), {warnings} warning(s)\n",
        if errors == 0 { "OK" } else { "REFUSED" }
    ));
    out_result(out.write_all(text.as_bytes()))?;
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rx_sign(args: &RxSignArgs) -> Result<ExitCode> {
    let file = rx::load(&args.rx)?;
    let key = keys::load_private(&args.key)?;
    let library = druglib::DrugLibrary::builtin()?;
    let issued = file.issued_time_ms.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
    });
    let (report, prescription) = rx::check(
        &file,
        &board::hardware_limits(),
        &library,
        args.device,
        args.serial,
        issued,
    );
    let Some(prescription) = prescription else {
        let first = report
            .problems
            .iter()
            .find(|p| p.severity == rx::Severity::Error)
            .map_or_else(String::new, ToString::to_string);
        bail!(
            "{}: not signed: {first} (run `pumpctl rx check {}` for every problem)",
            args.rx.display(),
            args.rx.display()
        );
    };
    let frame = sign::install_frame(&prescription, &key, args.serial)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.rx.file_stem().map_or_else(
            || "prescription".into(),
            |s| s.to_string_lossy().into_owned(),
        );
        PathBuf::from(format!("{stem}-{}.install.bin", args.serial))
    });
    pumpctl::error::write_file(&out, &frame)?;
    let mut text = String::new();
    for line in &report.summary {
        text.push_str(line);
        text.push('\n');
    }
    for p in &report.problems {
        text.push_str(&format!("{p}\n"));
    }
    text.push_str(&format!(
        "signed {} serial {} for device {:#010x} with key {}; wrote {} ({} bytes)\n",
        prescription.drug_name,
        args.serial,
        args.device,
        keys::hex(key.verifying_key().as_bytes()),
        out.display(),
        frame.len()
    ));
    out_result(std::io::stdout().lock().write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let key = keys::generate()?;
    keys::write_private(&args.out, &key)?;
    let mut pub_path = args.out.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let verifying = key.verifying_key();
    pumpctl::error::write_file(&pub_path, keys::public_key_text(&verifying).as_bytes())?;
    let text = format!(
        "wrote private key {} (keep it secret) and public key {}\npublic key (hex): {}\nfor the board's clinic_keys:\n{}\n",
        args.out.display(),
        pub_path.display(),
        keys::hex(verifying.as_bytes()),
        keys::rust_literal(&verifying)
    );
    out_result(std::io::stdout().lock().write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// Where decode reads from.
enum Source {
    Stdin,
    File(PathBuf),
    Serial { port: String, baud: u32 },
}

fn parse_source(input: &str) -> Result<Source> {
    if input == "-" {
        return Ok(Source::Stdin);
    }
    if let Some(spec) = input.strip_prefix("serial:") {
        let (port, baud) = match spec.rsplit_once('@') {
            Some((port, baud)) => (
                port,
                baud.parse().map_err(|_| {
                    Error(format!(
                        "{input}: baud rate `{baud}` is not a number (serial:PORT@BAUD)"
                    ))
                })?,
            ),
            None => (spec, 115_200),
        };
        if port.is_empty() {
            bail!("{input}: expected serial:PORT[@BAUD], e.g. serial:/dev/ttyACM0@115200");
        }
        return Ok(Source::Serial {
            port: port.to_string(),
            baud,
        });
    }
    Ok(Source::File(PathBuf::from(input)))
}

fn decode_cmd(args: &DecodeArgs) -> Result<ExitCode> {
    let format = if args.json {
        decode::Format::Json
    } else if args.csv {
        decode::Format::Csv
    } else {
        decode::Format::Table
    };
    let source = parse_source(&args.input)?;
    let name = args.input.clone();
    let mut reader: Box<dyn Read> = match &source {
        Source::Stdin => Box::new(std::io::stdin().lock()),
        Source::File(path) => Box::new(
            std::fs::File::open(path).map_err(|e| pumpctl::error::io_error(path, "open", &e))?,
        ),
        Source::Serial { port, baud } => Box::new(
            serialport::new(port.as_str(), *baud)
                .timeout(std::time::Duration::from_millis(200))
                .open()
                .map_err(|e| Error(format!("serial:{port}: cannot open: {e}")))?,
        ),
    };
    let is_serial = matches!(source, Source::Serial { .. });
    let stdout = std::io::stdout().lock();
    let mut renderer = decode::Renderer::new(std::io::BufWriter::new(stdout), format);
    let mut decoder = decode::Decoder::new();
    let mut counts = decode::Counts::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut write_err: Option<std::io::Error> = None;
    let mut idle_ms = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => bail!("{name}: read failed: {e}"),
        };
        if n == 0 {
            if args.follow {
                let _ = renderer.flush();
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            if is_serial && idle_ms < 2_000 {
                idle_ms += 200;
                continue;
            }
            break;
        }
        idle_ms = 0;
        counts.bytes += n as u64;
        decoder.feed(&buf[..n], |item| {
            counts.count(&item);
            if write_err.is_none() {
                if let Err(e) = renderer.write(&item) {
                    write_err = Some(e);
                }
            }
        });
        if let Some(e) = write_err.take() {
            return out_result(Err(e)).map(|_| ExitCode::SUCCESS);
        }
        if args.follow {
            let _ = renderer.flush();
        }
    }
    decoder.finish(|item| {
        counts.count(&item);
        if write_err.is_none() {
            if let Err(e) = renderer.write(&item) {
                write_err = Some(e);
            }
        }
    });
    if let Some(e) = write_err.take() {
        return out_result(Err(e)).map(|_| ExitCode::SUCCESS);
    }
    if !out_result(renderer.flush())? {
        return Ok(ExitCode::SUCCESS);
    }
    if counts.bytes == 0 {
        bail!("{name}: empty input: no bytes to decode");
    }
    if counts.frames == 0 && counts.bad > 0 {
        bail!(
            "{name}: no valid frame in {} bytes ({} bad, first at offset {}): not a pump telemetry stream?",
            counts.bytes,
            counts.bad,
            counts.bad_offsets.first().copied().unwrap_or(0)
        );
    }
    if format == decode::Format::Table {
        out_result(writeln!(std::io::stdout().lock(), "{}", counts.summary()))?;
    } else {
        eprintln!("{}", counts.summary());
    }
    let _ = Path::new(&name);
    Ok(ExitCode::SUCCESS)
}
