//! `pumpctl` command line. Every command's `--help` shows an example.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use pumpctl::error::{Error, Result};
use pumpctl::{
    bail, bench, board, chart, cmdcli, decode, druglib, keys, pairing, report, rx, script, sign,
    simcmd, trumpet,
};

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
    #[command(after_help = "Example:\n  pumpctl demo\n  pumpctl demo --out demo-run")]
    Demo(DemoArgs),
    /// Prescription tools: check against the board and the drug library, sign.
    #[command(subcommand)]
    Rx(RxCommand),
    /// Programmer commands: sign one for the link.
    #[command(subcommand)]
    Cmd(cmdcli::CmdCommand),
    /// Generate a clinic signing key pair.
    #[command(
        after_help = "Example:\n  pumpctl keygen --out clinic.key     # writes clinic.key (0600) and clinic.key.pub"
    )]
    Keygen(KeygenArgs),
    /// Simulate the whole pump (capsule, dosing app, telemetry) on a prescription.
    #[command(after_help = SIMULATE_HELP)]
    Simulate(SimulateArgs),
    /// Dose-history report of a telemetry log: table, CSV, Markdown and SVG charts.
    #[command(
        after_help = "Example:\n  pumpctl report pumpctl-demo/telemetry.log --out report/\n\nWrites report.svg (daily dose, boluses, alarms, reservoir), daily.csv and report.md;\nprints the daily table. Works on any telemetry log, simulated or read from a pump."
    )]
    Report(ReportArgs),
    /// IEC 60601-2-24-style trumpet curve of a delivery (step) log.
    #[command(
        after_help = "Example:\n  pumpctl simulate examples/baclofen.toml --days 1 --out sim/\n  pumpctl trumpet sim/steps.csv --rate 25000nl/h\n\nThe delivery log is a step log: CSV with `monotonic_ms` (or `time_ms`) and `volume_nl`\ncolumns, one row per motor step (steps.csv from `pumpctl simulate`). Windows 2, 5, 11,\n19 and 31 min over the analysis period (default: the log's second hour), 30 s samples.\nRATE is nL/h, or with a unit: 25ul/h, 0.6ml/day."
    )]
    Trumpet(TrumpetArgs),
    /// Benchmark: simulated days per second, decode throughput against the protocol crate.
    #[command(
        after_help = "Example:\n  cargo run --release -p pumpctl -- bench\n  pumpctl bench --days 365 --mb 64"
    )]
    Bench(BenchArgs),
    /// The battery's projected life at the demo prescription and at the
    /// board's maximum rate, with its largest consumers (docs/energy.md).
    #[command(after_help = "Example:\n  pumpctl energy\n  pumpctl energy --days 90")]
    Energy(EnergyArgs),
    /// Decode a telemetry frame stream (file, stdin or serial port).
    #[command(
        after_help = "Examples:\n  pumpctl decode pumpctl-demo/telemetry.log\n  pumpctl decode pumpctl-demo/telemetry.log --json | head\n  cat telemetry.log | pumpctl decode - --csv > events.csv\n  pumpctl decode serial:/dev/ttyACM0@115200 --follow"
    )]
    Decode(DecodeArgs),
    /// Simulate a fleet of virtual patients over years, in parallel: Parquet
    /// tables and hazard rates per patient-year (docs/fleet.md).
    #[command(after_help = pumpctl::fleet::cli::FLEET_HELP)]
    Fleet(pumpctl::fleet::cli::FleetArgs),
    /// Export telemetry logs into the fleet's Parquet tables.
    #[command(
        after_help = "Example:\n  pumpctl export --parquet --out field/ pump-17.log pump-18.log\n\nPatient i is the i-th log. Same layout and schema as `pumpctl fleet` (docs/fleet.md)."
    )]
    Export(pumpctl::fleet::cli::ExportArgs),
}

const SIMULATE_HELP: &str = "Examples:
  pumpctl simulate examples/baclofen-flex.toml --days 90 --events examples/demo-events.txt
  pumpctl simulate examples/morphine.toml --days 365 --seed 7 --out year/

Writes into --out: telemetry.log (the event stream the telemetry app stores, with
console text lines), steps.csv (one row per motor step: monotonic_ms, utc_ms, volume_nl),
summary.json, and report.svg/daily.csv/report.md (unless --no-charts).

The simulated board (device 0x00C0FFEE, 250 nL/step, 20 mL reservoir) trusts the
simulator's TEST-ONLY clinic key, which signs RX as serial 1 at the start, and every key
given with --trust (for `install` events with frames from `pumpctl rx sign`).

Event script (--events): one event per line, \"dDAY HH:MM[:SS] EVENT [key=value ...]\":
  bolus                              patient presses the PTM button
  patient-presses per_day=N [from=HH:MM to=HH:MM]   random presses from this day on (seeded)
  clinician-bolus [dose_ug=D duration_min=M]        default: the prescription's preset
  refill volume_ul=V [concentration_ug_per_ml=C]    withdraw the residual, fill V uL
  suspend | resume
  set-clock shift_min=+-N            move the wall clock
  stall | stall-cleared              motor jams (no encoder pulses, no flow) / freed + fault cleared
  occlusion | occlusion-cleared      occlusion sensor trips / releases + fault cleared
  ack code=ALARM | clear-fault code=ALARM   e.g. code=motor-stall, dosing-watchdog
  power-loss [down_min=N]            power fails; the cores are rebuilt from saved storage
  dosing-hang | dosing-restart       the dosing app stops checking in / is restarted
  install file=PATH                  send an install frame (path relative to the script)
Any event takes every_min=M times=N: N times, every M minutes from the line's time.
Lines starting with # are comments. See examples/demo-events.txt.";

#[derive(Args)]
struct SimulateArgs {
    /// Prescription TOML.
    rx: PathBuf,
    /// Days to simulate.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// PRNG seed (random patient presses).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Event script.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "pumpctl-sim")]
    out: PathBuf,
    /// Initial reservoir fill in µL.
    #[arg(long, default_value_t = 20_000)]
    fill_ul: u32,
    /// Extra clinic public key (KEY.pub or KEY) the simulated board trusts; repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// Skip report.svg, daily.csv and report.md.
    #[arg(long)]
    no_charts: bool,
    /// Usable battery capacity in mAh, to see ERI and end of service in a
    /// shorter run (default: the board profile's, docs/energy.md).
    #[arg(long)]
    battery_mah: Option<u32>,
}

#[derive(Args)]
struct ReportArgs {
    /// Telemetry log (frame stream).
    log: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "pumpctl-report")]
    out: PathBuf,
}

#[derive(Args)]
struct TrumpetArgs {
    /// Step log CSV (steps.csv from `pumpctl simulate`).
    log: PathBuf,
    /// Set rate: nL/h, or with a unit (25ul/h, 0.6ml/day).
    #[arg(long)]
    rate: String,
    /// Analysis period start, minutes after the first step.
    #[arg(long, default_value_t = 60)]
    start_min: u64,
    /// Analysis period length in minutes.
    #[arg(long, default_value_t = 60)]
    period_min: u64,
    /// Output SVG.
    #[arg(long, default_value = "trumpet.svg")]
    out: PathBuf,
}

#[derive(Args)]
struct EnergyArgs {
    /// Days of the demo prescription to simulate.
    #[arg(long, default_value_t = 365)]
    days: u32,
}

#[derive(Args)]
struct BenchArgs {
    /// Simulated days.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Size of the generated log to decode, MB.
    #[arg(long, default_value_t = 64)]
    mb: u64,
    /// Patients of the fleet measurement (each simulated for --days / 4).
    #[arg(long, default_value_t = 16)]
    fleet_patients: u32,
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
        after_help = "Example:\n  pumpctl rx sign examples/baclofen-flex.toml --key clinic.key --device 0x00C0FFEE --serial 2 --out rx2.bin\n\nThe output is one stream-encoded frame (0x00 COBS 0x00) carrying\na format-2 body, postcard(Prescription) || postcard(Pairing) (the PTM key of\n[pairing] and [clinician_bolus_limits]), and the Ed25519 signature over the\nformat-2 signing domain and the body.\nA prescription with warnings is signed only with --accept-warnings; errors never.\nSerial 0 is refused; a serial within 1000 of 4294967295 is a warning."
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
    #[arg(long, value_parser = cmdcli::parse_u32)]
    device: u32,
    /// Prescription serial: must be above the installed one.
    #[arg(long)]
    serial: u32,
    /// Output file (default: RX stem + `-<serial>.install.bin`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Sign although `rx check` (or the serial) has warnings: the clinician
    /// has read every one and has a reason. Errors are never signed.
    #[arg(long)]
    accept_warnings: bool,
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
        Command::Cmd(cmdcli::CmdCommand::Sign(args)) => {
            print(&cmdcli::run_sign(&args)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen(args) => keygen(&args),
        Command::Decode(args) => decode_cmd(&args),
        Command::Simulate(args) => simulate(&args),
        Command::Report(args) => report_cmd(&args),
        Command::Trumpet(args) => trumpet_cmd(&args),
        Command::Bench(args) => bench_cmd(&args),
        Command::Energy(args) => energy_cmd(&args),
        Command::Fleet(args) => {
            print(&pumpctl::fleet::cli::fleet(&args)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(args) => {
            print(&pumpctl::fleet::cli::export(&args)?)?;
            Ok(ExitCode::SUCCESS)
        }
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

fn print(text: &str) -> Result<()> {
    out_result(std::io::stdout().lock().write_all(text.as_bytes())).map(|_| ())
}

fn demo(args: &DemoArgs) -> Result<ExitCode> {
    let run = simcmd::demo_run(&args.out)?;
    let outcome = simcmd::execute(&run)?;
    print(&format!(
        "pumpctl demo: intrathecal baclofen, flex dosing, patient boluses, one refill, {} days\n{}next: open {}/report.svg, or try `pumpctl decode {}/telemetry.log`\n",
        run.days,
        outcome.summary,
        args.out.display(),
        args.out.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn simulate(args: &SimulateArgs) -> Result<ExitCode> {
    let rx_text = pumpctl::error::read_text(&args.rx)?;
    let events = match &args.events {
        Some(path) => script::load(path)?,
        None => Vec::new(),
    };
    let mut extra_keys = Vec::new();
    for path in &args.trust {
        extra_keys.push(keys::load_public(path)?);
    }
    if args.days == 0 {
        bail!("--days: expected at least 1 day");
    }
    let run = simcmd::Run {
        rx_text,
        rx_name: args.rx.clone(),
        events,
        days: args.days,
        seed: args.seed,
        fill_ul: args.fill_ul,
        extra_keys,
        out: args.out.clone(),
        charts: !args.no_charts,
        progress: true,
        battery_mah: args.battery_mah,
    };
    let outcome = simcmd::execute(&run)?;
    print(&outcome.summary)?;
    Ok(ExitCode::SUCCESS)
}

fn report_cmd(args: &ReportArgs) -> Result<ExitCode> {
    let history = report::load_history(&args.log)?;
    let written = report::write(history, &args.log.display().to_string(), &args.out)?;
    let names: Vec<String> = written
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let h = &written.history;
    print(&format!(
        "{}\n{} frames, {} bad frames, {} console lines, {} events lost; {} alarms, {} refills\nwrote {}\n",
        written.table,
        h.counts.frames,
        h.counts.bad,
        h.counts.text_lines,
        h.lost_events,
        h.alarms.len(),
        h.refills.len(),
        names.join(", ")
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn trumpet_cmd(args: &TrumpetArgs) -> Result<ExitCode> {
    let rate = trumpet::parse_rate(&args.rate)?;
    let steps = trumpet::load_steps(&args.log)?;
    if args.period_min < 31 {
        bail!("--period-min: expected at least 31 minutes (the longest observation window)");
    }
    let t = trumpet::analyse(
        &steps,
        rate,
        args.start_min * 60_000,
        args.period_min * 60_000,
    )?;
    let maxs: Vec<f64> = t.windows.iter().map(|w| w.1).collect();
    let mins: Vec<f64> = t.windows.iter().map(|w| w.2).collect();
    let wins: Vec<u32> = t.windows.iter().map(|w| w.0).collect();
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        pumpctl::error::create_dir(parent)?;
    }
    chart::trumpet_svg(
        &args.out,
        &wins,
        &maxs,
        &mins,
        t.overall_pct,
        &format!("Trumpet curve at {} nL/h — {}", rate, args.log.display()),
    )?;
    print(&format!(
        "{}wrote {}\n",
        trumpet::table(&t),
        args.out.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn energy_cmd(args: &EnergyArgs) -> Result<ExitCode> {
    let scratch = std::env::temp_dir().join(format!("pumpctl-energy-{}", std::process::id()));
    let table = pumpctl::bench::energy_table(args.days, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    print(&table?)?;
    Ok(ExitCode::SUCCESS)
}

fn bench_cmd(args: &BenchArgs) -> Result<ExitCode> {
    let scratch = std::env::temp_dir().join(format!("pumpctl-bench-{}", std::process::id()));
    let figures = bench::run(args.days, args.mb, args.fleet_patients, &scratch)?;
    let _ = std::fs::remove_dir_all(&scratch);
    print(&bench::table(&figures))?;
    Ok(ExitCode::SUCCESS)
}

fn rx_check(args: &RxCheckArgs) -> Result<ExitCode> {
    let file = rx::load(&args.rx)?;
    let library = druglib::DrugLibrary::builtin()?;
    let (report, _) = pairing::check_v2(
        &file,
        &board::hardware_limits(),
        &library,
        board::SIM_DEVICE_ID,
        1,
        0,
    );
    let mut out = std::io::stdout().lock();
    let mut text = format!(
        "{}:\nchecked against {}\n",
        args.rx.display(),
        library.identity()
    );
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
        "{}: {errors} error(s), {warnings} warning(s){}\n",
        if errors == 0 { "OK" } else { "REFUSED" },
        if errors == 0 && warnings > 0 {
            " (rx sign needs --accept-warnings)"
        } else {
            ""
        }
    ));
    out_result(out.write_all(text.as_bytes()))?;
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rx_sign(args: &RxSignArgs) -> Result<ExitCode> {
    let serial_warning = sign::check_serial(args.serial).map_err(|e| Error(e.to_string()))?;
    let file = rx::load(&args.rx)?;
    let key = keys::load_private(&args.key)?;
    let library = druglib::DrugLibrary::builtin()?;
    let issued = file.issued_time_ms.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
    });
    let (mut report, signable) = pairing::check_v2(
        &file,
        &board::hardware_limits(),
        &library,
        args.device,
        args.serial,
        issued,
    );
    if let Some(w) = serial_warning {
        report.problems.push(rx::Problem {
            severity: rx::Severity::Warning,
            field: "--serial".into(),
            message: w.to_string(),
        });
    }
    let Some(pairing::Signable {
        prescription,
        pairing,
    }) = signable
    else {
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
    let warnings: Vec<&rx::Problem> = report
        .problems
        .iter()
        .filter(|p| p.severity == rx::Severity::Warning)
        .collect();
    if let Some(first) = warnings.first() {
        if !args.accept_warnings {
            bail!(
                "{}: not signed: {} warning(s) need --accept-warnings after reading them, the first: {first} (run `pumpctl rx check {}` for every problem)",
                args.rx.display(),
                warnings.len(),
                args.rx.display()
            );
        }
    }
    let frame = sign::install_frame_v2(&prescription, &pairing, &key, args.serial)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.rx.file_stem().map_or_else(
            || "prescription".into(),
            |s| s.to_string_lossy().into_owned(),
        );
        PathBuf::from(format!("{stem}-{}.install.bin", args.serial))
    });
    pumpctl::error::write_file(&out, &frame)?;
    // The library this prescription was checked against, recorded beside
    // it: the pump never sees the library (SR-HOST-019).
    let record_path = signing_record_path(&out);
    let record = serde_json::json!({
        "drug": prescription.drug_name.as_str(),
        "device_id": args.device,
        "serial": args.serial,
        "issued_time_ms": issued,
        "install_frame": out.display().to_string(),
        "install_frame_sha256": sha256_hex(&frame),
        "clinic_public_key": keys::hex(key.verifying_key().as_bytes()),
        "drug_library": {
            "version": library.library.version,
            "effective_date": library.library.effective_date,
            "sha256": library.sha256_hex,
        },
        "warnings_accepted": warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    pumpctl::error::write_file(&record_path, format!("{record:#}\n").as_bytes())?;
    let mut text = format!("checked against {}\n", library.identity());
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
    text.push_str(&format!(
        "recorded the drug library with it in {}\n",
        record_path.display()
    ));
    out_result(std::io::stdout().lock().write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// Where `rx sign` records what a signed frame was checked against: the
/// frame's path with `.record.json` appended.
fn signing_record_path(frame: &std::path::Path) -> PathBuf {
    let mut path = frame.as_os_str().to_owned();
    path.push(".record.json");
    PathBuf::from(path)
}

/// SHA-256 of `bytes`, lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
