//! Host side of the QEMU end-to-end test.
//!
//! Boots the pump (kernel, signed apps) in QEMU with the UART on a Unix
//! socket (the telemetry link), the QEMU monitor on another (the host's hand
//! on the simulated hardware: `sendkey` to the VirtIO keyboard) and the
//! kernel's semihosting log in a file. Then, as a programmer and a patient
//! would:
//!
//! 1. waits for the rogue app to finish trying everything it may not do;
//! 2. sets the clock, installs a prescription signed by `pumpctl rx sign`,
//!    records a refill (waits for each `Ack`);
//! 3. lets the basal run, presses Button 1 (patient bolus), waits for the
//!    bolus to complete, presses it again (refused: lockout); then crashes
//!    the dosing app (F9: the kernel faults it and restarts it) and waits
//!    until the new life of the app has restored its record from the
//!    capsule and adopted the prescription again;
//! 4. orders a clinician bolus as the programmer: the telemetry app hands
//!    the signed command to the capsule, which verifies it and relays it to
//!    the dosing app, and the `Ack` must come only after the dosing app has
//!    granted it (its console line precedes the `Ack` on the UART); 25 s into
//!    the bolus it **cuts the power** (kills QEMU and starts it again on the
//!    same flash) and checks what came back (below), that the bolus is not
//!    running and was closed as `Interrupted`; then plays the attacker on the
//!    link: a clinician bolus signed with another key, the genuine one
//!    (signed before the power cut) replayed and a plain (unsigned) suspend,
//!    each refused with its reason, and no second clinician bolus; then
//!    suspends and resumes therapy, and checks that both notices reached the
//!    dosing app and that basal runs again; then **hangs the kernel loop**
//!    (F10) twice: each time the board's watchdog stops QEMU (exit status
//!    0x57) and the driver starts it again on the same flash, checks what
//!    came back and that the `Resume` signed before the reset is refused as
//!    replayed; the second watchdog reset in a row raises `RepeatedResets`,
//!    which the clinic clears with a signed `ClearFault`;
//! 5. changes the drug's concentration: installs a second prescription
//!    (serial 2, the same drug at twice the concentration), then records the
//!    refill with the new drug; both reach the dosing app as relay notices,
//!    and the catheter's old drug must leave at its old rate as a bridge
//!    bolus (seen as a running bolus in `StatusSnapshot`);
//! 6. jams the motor (during the bridge) and checks that the stall stopped
//!    it; checks that the power-on RAM test passed in every life, and
//!    injects a failed self-test (F11), which must be logged and raise the
//!    high `SelfTestFailed` alarm;
//! 7. reads the whole log back in `ReadLog` chunks: it holds every event
//!    the pump sent in its four lives, from sequence 0;
//!
//! and writes the raw UART stream of all lives of the pump to `uart.bin` for
//! `pumpctl decode`, which the calling script uses for the final assertions.
//!
//! After each reset: the kernel's start is logged with its reason
//! (`KernelStarted`: power-on after the power cut, watchdog with the resets
//! in a row after a hang), the rogue app has run again, the dosing app has
//! restored its record from the capsule and adopted the prescription again,
//! the status shows the same prescription serial, no bolus running, a
//! reservoir at most a few seconds of steps and one reservation batch lower
//! and a 24 h total no lower than just before the reset, and the first
//! prescription sent again is refused `ReplayedSerial` (the serial floor
//! came back), and the telemetry log read back from flash holds every event
//! sent before the reset, from sequence 0, with no `LogGap` over an event
//! that was sent (`check_log`; one line each in `log-checks.txt`). The flash, the mechanism's position and the reset record are
//! host files in `--out`. It fails (exit 1) as
//! soon as an expected answer does not come.
//!
//! Every command that changes therapy is signed as protocol 1.1 asks
//! (`docs/protocol.md` §5.5) with the clinic key the board trusts
//! (`--clinic-key`, pumpctl's TEST-ONLY simulator key), for device
//! `0x00C0FFEE`, with the wall-clock time in ms as its counter.
//!
//! Usage: `pump-e2e --out DIR --kernel ELF --apps BIN --install FRAME
//!         --install-change FRAME --clinic-key FILE [--qemu qemu-system-riscv32]`

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};
use pump_protocol::command_auth::{
    encode_command_body, signed_command_message, CommandBody, Signer, COMMAND_FORMAT,
    MAX_COMMAND_BODY_LEN, MAX_COMMAND_PAYLOAD_LEN, MAX_SIGNED_COMMAND_MESSAGE_LEN,
};
use pump_protocol::{
    encode_stream_frame_vec, flags, AuthenticatedCommand, ClinicianBolus, DecodedFrame, ErrorCode,
    Frame, LogChunkEnd, LogGap, Message, MessageKind, ReadLog, Refill, SetClock, StreamDecoder,
    StreamItem,
};

/// The QEMU board's device id (`boards/qemu_rv32_virt`).
const DEVICE_ID: u32 = 0x00C0_FFEE;

/// The pump's flash (a host file the board reaches through semihosting),
/// in the output directory.
const FLASH_FILE: &str = "pump-flash.bin";
/// The simulated mechanism's position (total steps), in the output directory.
const MECHANISM_FILE: &str = "pump-mechanism.bin";
/// Steps one reservation covers (`infusion_core::RESERVATION_STEPS`): the
/// most a reset can count beyond what the motor made.
const RESERVATION_STEPS: u32 = 32;
/// The QEMU board's volume per step.
const NL_PER_STEP: u32 = 250;

/// The board's reset record (why it started), in the output directory.
const RESET_FILE: &str = "pump-reset.bin";
/// The log checks' results, one line each (`check_log`).
const LOG_CHECKS_FILE: &str = "log-checks.txt";
/// QEMU's exit status when the board's watchdog stops it
/// (`boards/qemu_rv32_virt/src/watchdog.rs`).
const WATCHDOG_EXIT_STATUS: i32 = 0x57;

/// What the UART has said so far.
#[derive(Default)]
struct Link {
    raw: Vec<u8>,
    frames: Vec<DecodedFrame>,
}

#[derive(Clone)]
struct Args {
    out: PathBuf,
    kernel: PathBuf,
    apps: PathBuf,
    install: PathBuf,
    install_change: PathBuf,
    clinic_key: PathBuf,
    qemu: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut out, mut kernel, mut apps, mut install) = (None, None, None, None);
    let mut install_change = None;
    let mut clinic_key = None;
    let mut qemu = "qemu-system-riscv32".to_string();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--kernel" => kernel = Some(PathBuf::from(value()?)),
            "--apps" => apps = Some(PathBuf::from(value()?)),
            "--install" => install = Some(PathBuf::from(value()?)),
            "--install-change" => install_change = Some(PathBuf::from(value()?)),
            "--clinic-key" => clinic_key = Some(PathBuf::from(value()?)),
            "--qemu" => qemu = value()?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        out: out.ok_or("--out missing")?,
        kernel: kernel.ok_or("--kernel missing")?,
        apps: apps.ok_or("--apps missing")?,
        install: install.ok_or("--install missing")?,
        install_change: install_change.ok_or("--install-change missing")?,
        clinic_key: clinic_key.ok_or("--clinic-key missing")?,
        qemu,
    })
}

struct Pump {
    args: Args,
    /// How many times QEMU has been started (the pump's lives).
    lives: usize,
    qemu: Child,
    uart: UnixStream,
    monitor: UnixStream,
    link: Arc<Mutex<Link>>,
    kernel_log: PathBuf,
    started: Instant,
    next_sequence: u32,
    clinic_key: SigningKey,
    last_counter: u64,
    /// Frames the link had when the pump was last reset.
    frames_at_reset: usize,
}

/// A pumpctl private key file: `#` comment lines, then the seed as 64 hex
/// digits.
fn read_key(path: &Path) -> Result<SigningKey, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<String>()
        .split_whitespace()
        .collect();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("{}: not a 32-byte hex seed", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `message` as a signed programmer command (`docs/protocol.md` §5.5).
fn signed(message: &Message, key: &SigningKey, counter: u64) -> Result<Message, String> {
    let mut payload = [0u8; MAX_COMMAND_PAYLOAD_LEN];
    let len = message
        .encode_payload(&mut payload)
        .map_err(|e| format!("payload: {e:?}"))?;
    let body = CommandBody {
        format: COMMAND_FORMAT,
        device_id: DEVICE_ID,
        signer: Signer::Clinic.code(),
        counter,
        kind: message.kind_code(),
        payload: heapless::Vec::from_slice(&payload[..len]).map_err(|()| "payload too long")?,
    };
    let mut body_buf = [0u8; MAX_COMMAND_BODY_LEN];
    let body = encode_command_body(&body, &mut body_buf).map_err(|e| format!("body: {e:?}"))?;
    let mut to_sign = [0u8; MAX_SIGNED_COMMAND_MESSAGE_LEN];
    let to_sign = signed_command_message(body, &mut to_sign).map_err(|e| format!("{e:?}"))?;
    let mut bytes = heapless::Vec::from_slice(body).map_err(|()| "body too long")?;
    bytes
        .extend_from_slice(&key.sign(to_sign).to_bytes())
        .map_err(|()| "signed command too long")?;
    Ok(Message::AuthenticatedCommand(AuthenticatedCommand {
        signed_command: bytes,
    }))
}

fn connect(path: &Path, deadline: Instant) -> Result<UnixStream, String> {
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("cannot connect to {}: {e}", path.display()))
            }
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Starts QEMU on the pump's image and storage in `args.out` (its working
/// directory, where the flash and the mechanism's position are kept, so a
/// second start finds them), and connects to its UART and monitor.
fn start_qemu(args: &Args) -> Result<(Child, UnixStream, UnixStream), String> {
    let uart_sock = args.out.join("uart.sock");
    let monitor_sock = args.out.join("monitor.sock");
    for path in [&uart_sock, &monitor_sock] {
        let _ = fs::remove_file(path);
    }
    let absolute = |p: &Path| {
        fs::canonicalize(p)
            .map(|p| p.display().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let path = |p: &Path| p.display().to_string();
    let qemu = Command::new(&args.qemu)
        .current_dir(&args.out)
        .args(["-machine", "virt", "-nographic", "-nic", "none"])
        .args(["-global", "driver=riscv-cpu,property=smepmp,value=true"])
        .args(["-global", "virtio-mmio.force-legacy=false"])
        .args(["-device", "virtio-keyboard-device"])
        // The UART (telemetry link): QEMU waits for us before it starts.
        .arg("-chardev")
        .arg(format!(
            "socket,id=uart,path={},server=on,wait=on",
            path(&uart_sock)
        ))
        .args(["-serial", "chardev:uart"])
        .arg("-chardev")
        .arg(format!(
            "socket,id=mon,path={},server=on,wait=off",
            path(&monitor_sock)
        ))
        .args(["-monitor", "chardev:mon"])
        // The kernel's log, kept across restarts.
        .arg("-chardev")
        .arg("file,id=semi,path=kernel.log,append=on")
        // The flash and the mechanism's position: host files in --out.
        .args([
            "-semihosting-config",
            &format!(
                "enable=on,chardev=semi,arg={FLASH_FILE},arg={MECHANISM_FILE},arg={RESET_FILE}"
            ),
        ])
        .arg("-bios")
        .arg(absolute(&args.kernel)?)
        .arg("-device")
        .arg(format!(
            "loader,file={},addr=0x80100000",
            absolute(&args.apps)?
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.qemu))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let uart = connect(&uart_sock, deadline)?;
    let monitor = connect(&monitor_sock, deadline)?;
    Ok((qemu, uart, monitor))
}

impl Pump {
    fn boot(args: &Args) -> Result<Self, String> {
        fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
        let kernel_log = args.out.join("kernel.log");
        let _ = fs::remove_file(&kernel_log);
        let _ = fs::remove_file(args.out.join("uart.bin"));
        for file in [FLASH_FILE, MECHANISM_FILE, RESET_FILE, LOG_CHECKS_FILE] {
            let _ = fs::remove_file(args.out.join(file));
        }
        let (qemu, uart, monitor) = start_qemu(args)?;
        let link = Arc::new(Mutex::new(Link::default()));
        spawn_reader(&uart, args, &link)?;
        Ok(Self {
            args: args.clone(),
            lives: 1,
            qemu,
            uart,
            monitor,
            link,
            kernel_log,
            started: Instant::now(),
            next_sequence: 1,
            clinic_key: read_key(&args.clinic_key)?,
            last_counter: 0,
            frames_at_reset: 0,
        })
    }

    /// Cuts the power: kills QEMU mid-flight, then starts it again on the
    /// same flash, mechanism and reset record.
    fn power_cut(&mut self) -> Result<(), String> {
        self.log("POWER CUT: killing QEMU (SIGKILL), whatever the pump is doing");
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        self.start_again()
    }

    /// Waits for the board's watchdog to stop QEMU (exit status 0x57), then
    /// starts it again on the same files: the watchdog's reset.
    fn await_watchdog_reset(&mut self, secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(status) = self.qemu.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() > deadline {
                return Err(format!("the watchdog did not stop QEMU within {secs} s"));
            }
            thread::sleep(Duration::from_millis(50));
        };
        if status.code() != Some(WATCHDOG_EXIT_STATUS) {
            return Err(format!(
                "QEMU stopped with {status}, not the watchdog's status {WATCHDOG_EXIT_STATUS}"
            ));
        }
        self.log(&format!(
            "WATCHDOG: QEMU stopped with status {WATCHDOG_EXIT_STATUS:#x}; starting it again on the same flash"
        ));
        self.start_again()
    }

    fn start_again(&mut self) -> Result<(), String> {
        self.frames_at_reset = self.frame_count();
        let (qemu, uart, monitor) = start_qemu(&self.args)?;
        spawn_reader(&uart, &self.args, &self.link)?;
        self.qemu = qemu;
        self.uart = uart;
        self.monitor = monitor;
        self.lives += 1;
        self.log(&format!("QEMU started again (life {})", self.lives));
        Ok(())
    }

    fn log(&self, what: &str) {
        println!("[{:6.1} s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// Waits until `done` holds for what the link has said.
    fn wait<T>(
        &self,
        what: &str,
        secs: u64,
        done: impl Fn(&Link) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(value) = done(&self.link.lock().unwrap()) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {secs} s waiting for {what}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_text(&self, text: &str, secs: u64) -> Result<(), String> {
        self.wait(&format!("\"{text}\" on the UART"), secs, |link| {
            contains(&link.raw, text.as_bytes()).then_some(())
        })?;
        self.log(&format!("UART: {text}"));
        Ok(())
    }

    /// Like `wait_text`, for the `nth` time the text appears (1 = first).
    fn wait_text_nth(&self, text: &str, nth: usize, secs: u64) -> Result<(), String> {
        self.wait(&format!("\"{text}\" on the UART ({nth}x)"), secs, |link| {
            (link
                .raw
                .windows(text.len())
                .filter(|w| *w == text.as_bytes())
                .count()
                >= nth)
                .then_some(())
        })?;
        self.log(&format!("UART: {text} ({nth}x)"));
        Ok(())
    }

    fn wait_kernel_log(&self, text: &str, secs: u64) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = fs::read_to_string(&self.kernel_log).unwrap_or_default();
            if log.contains(text) {
                return Ok(log);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out waiting for \"{text}\" in the kernel log"
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a host command and returns its sequence number.
    fn send(&mut self, message: Message) -> Result<u32, String> {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let bytes = encode_stream_frame_vec(&Frame {
            sequence,
            flags: 0,
            message,
        })
        .map_err(|e| format!("encode: {e:?}"))?;
        self.send_raw(&bytes)?;
        Ok(sequence)
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.uart
            .write_all(bytes)
            .map_err(|e| format!("UART write: {e}"))
    }

    /// Sends `message` signed with the clinic key (the counter is the wall
    /// clock in ms, raised past the last one); returns its sequence number
    /// and the frame sent, for a replay.
    fn send_signed(&mut self, message: Message) -> Result<(u32, Message), String> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        self.last_counter = now_ms.max(self.last_counter + 1);
        let wrapped = signed(&message, &self.clinic_key, self.last_counter)?;
        let sequence = self.send(wrapped.clone())?;
        Ok((sequence, wrapped))
    }

    /// The answer (`Ack` or `Nack`) to the request sent as `sequence`.
    fn answer(
        &self,
        sequence: u32,
        what: &str,
        secs: u64,
    ) -> Result<Result<(), ErrorCode>, String> {
        self.wait(&format!("the answer to {what}"), secs, |link| {
            link.frames.iter().find_map(|f| {
                if f.sequence() != sequence {
                    return None;
                }
                match &f.message {
                    Message::Ack(_) => Some(Ok(())),
                    Message::Nack(n) => Some(Err(n.error)),
                    _ => None,
                }
            })
        })
    }

    /// Waits for the `Ack` of the request sent as `sequence`.
    fn expect_acked(&self, sequence: u32, what: &str, secs: u64) -> Result<(), String> {
        match self.answer(sequence, what, secs)? {
            Ok(()) => {
                self.log(&format!("Ack {what}"));
                Ok(())
            }
            Err(e) => Err(format!("{what} refused by the pump: {e:?}")),
        }
    }

    /// Waits for the `Nack` with `error` of the request sent as `sequence`.
    fn expect_refused(
        &self,
        sequence: u32,
        what: &str,
        error: ErrorCode,
        secs: u64,
    ) -> Result<(), String> {
        match self.answer(sequence, what, secs)? {
            Err(e) if e == error => {
                self.log(&format!("Nack {what}: {e:?}, as it must be"));
                Ok(())
            }
            Err(e) => Err(format!("{what} refused with {e:?}, not {error:?}")),
            Ok(()) => Err(format!("{what} was ACCEPTED by the pump")),
        }
    }

    /// Waits for the `Ack` (or fails on the `Nack`) of request `kind`
    /// among the frames after the first `from`.
    fn expect_ack(&self, kind: MessageKind, from: usize, secs: u64) -> Result<(), String> {
        let code = kind.code();
        let verdict = self.wait(&format!("the answer to {kind:?}"), secs, |link| {
            link.frames
                .iter()
                .skip(from)
                .find_map(|f| match &f.message {
                    Message::Ack(a) if a.request_kind == code => Some(Ok(())),
                    Message::Nack(n) if n.request_kind == code => {
                        Some(Err(format!("{kind:?} refused by the pump: {:?}", n.error)))
                    }
                    _ => None,
                })
        })?;
        verdict?;
        self.log(&format!("Ack {kind:?}"));
        Ok(())
    }

    /// Waits for a `Nack` with `error` to request `kind` among the frames
    /// after the first `from`.
    fn expect_nack_kind_after(
        &self,
        kind: MessageKind,
        error: ErrorCode,
        from: usize,
        secs: u64,
    ) -> Result<(), String> {
        let code = kind.code();
        let answer = self.wait(&format!("the answer to {kind:?}"), secs, |link| {
            link.frames
                .iter()
                .skip(from)
                .find_map(|f| match &f.message {
                    Message::Ack(a) if a.request_kind == code => Some(None),
                    Message::Nack(n) if n.request_kind == code => Some(Some(n.error)),
                    _ => None,
                })
        })?;
        match answer {
            Some(e) if e == error => {
                self.log(&format!("Nack {kind:?} (replayed): {e:?}, as it must be"));
                Ok(())
            }
            Some(e) => Err(format!("{kind:?} refused with {e:?}, not {error:?}")),
            None => Err(format!("{kind:?} (replayed) was ACCEPTED by the pump")),
        }
    }

    /// Frames the link has said so far.
    fn frame_count(&self) -> usize {
        self.link.lock().unwrap().frames.len()
    }

    /// How often `text` is on the UART so far.
    fn text_count(&self, text: &str) -> usize {
        let link = self.link.lock().unwrap();
        link.raw
            .windows(text.len())
            .filter(|w| *w == text.as_bytes())
            .count()
    }

    fn monitor(&mut self, command: &str) -> Result<(), String> {
        self.monitor
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("monitor: {e}"))
    }

    fn key(&mut self, key: &str, why: &str) -> Result<(), String> {
        self.log(&format!("key {key}: {why}"));
        self.monitor(&format!("sendkey {key} 200"))
    }

    /// Live frames (not read back from the log) whose message satisfies
    /// `pred`.
    fn count(&self, pred: impl Fn(&Message) -> bool) -> usize {
        self.link
            .lock()
            .unwrap()
            .frames
            .iter()
            .filter(|f| f.header.flags & flags::FROM_LOG == 0 && pred(&f.message))
            .count()
    }

    fn quit(mut self) {
        let _ = self.monitor("quit");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.qemu.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The frames in `bytes` (a prefix of the UART capture).
fn frames_in(bytes: &[u8]) -> Vec<DecodedFrame> {
    let mut frames = Vec::new();
    StreamDecoder::new().feed(bytes, |item| {
        if let StreamItem::Frame { frame, .. } = item {
            frames.push(frame);
        }
    });
    frames
}

/// The dosing app's relay lines are `dosing: relay: <Kind> #<ticket>` (taken)
/// and `dosing: relay: answer #<ticket>: <verdict>` (said before answering).
/// Returns the ticket of the first `kind` taken.
fn relay_ticket(raw: &[u8], kind: &str) -> Option<u32> {
    let needle = format!("dosing: relay: {kind} #");
    let at = find(raw, needle.as_bytes())? + needle.len();
    let digits: String = raw[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    digits.parse().ok()
}

/// What a reset must show.
struct Expected {
    reset_reason: u8,
    watchdog_resets: u16,
    /// `dosing: record restored` lines on the UART once the app is back.
    record_restored: usize,
    /// `dosing: prescription adopted` lines once the app runs therapy again.
    prescription_adopted: usize,
}

/// After a reset (`pump` just started again): the kernel's start is logged
/// with its reason, and the prescription, the serial floor, the 24 h
/// ledger, the reservoir and the dosing app's record came back; no bolus
/// runs. `before` is a status taken shortly before the reset.
fn after_reset(
    pump: &mut Pump,
    before: &pump_protocol::StatusSnapshot,
    expected: Expected,
    install: &[u8],
) -> Result<(), String> {
    let life = pump.lives;
    pump.wait_text_nth("telemetry: started", life, 30)?;
    // The rogue app runs its attempts again in every life; let it finish,
    // so that the audit of every life is whole.
    pump.wait_text_nth("rogue: done:", life, 60)?;
    let started = pump.wait("KernelStarted of this life", 20, |link| {
        link.frames
            .iter()
            .filter(|f| f.header.flags == 0)
            .filter_map(|f| match &f.message {
                Message::KernelStarted(k) => Some(k.clone()),
                _ => None,
            })
            .nth(life - 1)
    })?;
    if (started.reset_reason, started.watchdog_resets)
        != (expected.reset_reason, expected.watchdog_resets)
    {
        return Err(format!(
            "KernelStarted says reason {} with {} watchdog resets, want {} and {}",
            started.reset_reason,
            started.watchdog_resets,
            expected.reset_reason,
            expected.watchdog_resets
        ));
    }
    pump.log(&format!(
        "KernelStarted: reset_reason {} (1 power-on, 2 watchdog), watchdog resets in a row {}",
        started.reset_reason, started.watchdog_resets
    ));
    pump.wait_text_nth("dosing: record restored", expected.record_restored, 20)?;
    pump.wait_text_nth(
        "dosing: prescription adopted",
        expected.prescription_adopted,
        20,
    )?;
    let after = fresh_status(pump)?;
    pump.log(&format!(
        "after the reset: serial {}, bolus {} nL to go, basal {} nL/h, reservoir {} nL, delivered in 24 h {} nL, top alarm {:?}",
        after.prescription_serial,
        after.bolus_remaining_nl,
        after.basal_rate_nl_per_h,
        after.reservoir_nl,
        after.delivered_24h_nl,
        after.top_alarm
    ));
    if after.prescription_serial != before.prescription_serial {
        return Err(format!(
            "prescription serial {} after the reset, {} before",
            after.prescription_serial, before.prescription_serial
        ));
    }
    if after.bolus_remaining_nl != 0 {
        return Err(format!(
            "a bolus runs after the reset ({} nL to go)",
            after.bolus_remaining_nl
        ));
    }
    // Between the two snapshots the motor made at most a few seconds of
    // steps, and the restore counts at most one reservation batch more.
    let slack_nl = (RESERVATION_STEPS + 40) * NL_PER_STEP;
    let used = before.reservoir_nl.checked_sub(after.reservoir_nl);
    if !used.is_some_and(|used| used <= slack_nl) {
        return Err(format!(
            "reservoir {} nL after the reset, {} nL before (at most {slack_nl} nL less)",
            after.reservoir_nl, before.reservoir_nl
        ));
    }
    if after.delivered_24h_nl < before.delivered_24h_nl {
        return Err(format!(
            "the 24 h ledger lost volume: {} nL after the reset, {} nL before",
            after.delivered_24h_nl, before.delivered_24h_nl
        ));
    }
    // The serial floor came back: the first prescription, sent again, is
    // refused as a replay.
    let from = pump.frame_count();
    pump.send_raw(install)?;
    pump.expect_nack_kind_after(
        MessageKind::InstallPrescription,
        ErrorCode::ReplayedSerial,
        from,
        20,
    )?;
    let upto = pump.frames_at_reset;
    check_log(pump, upto, &format!("after reset {}", life - 1))
}

/// Whether a frame the pump sent unasked (flags 0) is an event drained
/// from the capsule (which the telemetry app logs before it forwards it),
/// not an answer to the host.
/// Whether a frame is a logged event, not an answer to a host request
/// (answers are numbered in the link's own sequence and never stored).
fn is_event(message: &Message) -> bool {
    !matches!(
        message,
        Message::Ack(_)
            | Message::Nack(_)
            | Message::StatusSnapshot(_)
            | Message::ServiceOutlook(_)
            | Message::LogChunkEnd(_)
    )
}

/// Reads the whole log from sequence 0 (`ReadLog` chunks until `more` is
/// false): the stored frames (FROM_LOG) and the last chunk end.
fn read_whole_log(pump: &mut Pump) -> Result<(Vec<(u32, Message)>, LogChunkEnd), String> {
    let mut from = 0;
    let mut frames = Vec::new();
    for _ in 0..400 {
        let start = pump.frame_count();
        let seen = pump.count(|m| matches!(m, Message::LogChunkEnd(_)));
        pump.send(Message::ReadLog(ReadLog {
            from_sequence: from,
            max_frames: 16,
        }))?;
        let end = pump.wait("a LogChunkEnd", 10, |link| {
            link.frames
                .iter()
                .filter_map(|f| match &f.message {
                    Message::LogChunkEnd(end) => Some(end.clone()),
                    _ => None,
                })
                .nth(seen)
        })?;
        frames.extend(
            pump.link.lock().unwrap().frames[start..]
                .iter()
                .filter(|f| f.header.flags & flags::FROM_LOG != 0)
                .map(|f| (f.sequence(), f.message.clone())),
        );
        from = end.next_sequence;
        if !end.more {
            return Ok((frames, end));
        }
    }
    Err("the log read did not end in 400 chunks".into())
}

/// The log read back from flash holds every event the pump sent among the
/// link's first `upto` frames (in all its lives so far), nothing was erased to
/// make room (the oldest stored sequence is still 0: the rogue app's
/// floods pushed nothing out), and no `LogGap` names a number an event was
/// seen and stored under: a gap may only account for events the capsule
/// numbered but lost before the telemetry app drained them.
fn check_log(pump: &mut Pump, upto: usize, when: &str) -> Result<(), String> {
    let before: Vec<(u32, Message)> = pump.link.lock().unwrap().frames[..upto]
        .iter()
        .filter(|f| f.header.flags == 0 && is_event(&f.message))
        .map(|f| (f.sequence(), f.message.clone()))
        .collect();
    let (log, end) = read_whole_log(pump)?;
    let gaps: Vec<LogGap> = log
        .iter()
        .filter_map(|(_, m)| match m {
            Message::LogGap(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    let mut pool: Vec<&Message> = log.iter().map(|(_, m)| m).collect();
    let mut missing = Vec::new();
    for (sequence, message) in &before {
        match pool.iter().position(|m| *m == message) {
            Some(i) => {
                pool.swap_remove(i);
            }
            None => missing.push(*sequence),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "the log read {when} lacks {} of the {} events sent before (live sequences {:?})",
            missing.len(),
            before.len(),
            missing
        ));
    }
    if end.oldest_sequence != 0 {
        return Err(format!(
            "the log lost its oldest events: it starts at sequence {}",
            end.oldest_sequence
        ));
    }
    for gap in &gaps {
        let range = gap.first_missing_sequence
            ..gap.first_missing_sequence.saturating_add(gap.missing_count);
        if let Some((sequence, _)) = log
            .iter()
            .find(|(s, m)| range.contains(s) && !matches!(m, Message::LogGap(_)))
        {
            return Err(format!("LogGap {range:?} covers stored event {sequence}"));
        }
        if let Some((sequence, _)) = before
            .iter()
            .find(|(s, m)| range.contains(s) && log.iter().any(|(ls, lm)| ls == s && lm == m))
        {
            return Err(format!(
                "LogGap {range:?} names sequence {sequence}, an event seen before the reset"
            ));
        }
    }
    let line = format!(
        "log {when}: {} frames read back from sequence 0 (next {}), all {} events sent before among them, {} LogGap(s) {:?}",
        log.len(),
        end.next_sequence,
        before.len(),
        gaps.len(),
        gaps.iter()
            .map(|g| (g.first_missing_sequence, g.missing_count))
            .collect::<Vec<_>>()
    );
    pump.log(&line);
    // For e2e.sh: one line per check.
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pump.args.out.join(LOG_CHECKS_FILE))
        .map_err(|e| format!("{LOG_CHECKS_FILE}: {e}"))?;
    writeln!(file, "{line}").map_err(|e| format!("{LOG_CHECKS_FILE}: {e}"))?;
    Ok(())
}

/// A fresh `StatusSnapshot` (GetStatus), not one the link saw before.
fn fresh_status(pump: &mut Pump) -> Result<pump_protocol::StatusSnapshot, String> {
    fn live_snapshots(link: &Link) -> impl Iterator<Item = &pump_protocol::StatusSnapshot> {
        link.frames
            .iter()
            .filter(|f| f.header.flags == 0)
            .filter_map(|f| match &f.message {
                Message::StatusSnapshot(s) => Some(s),
                _ => None,
            })
    }
    let seen = live_snapshots(&pump.link.lock().unwrap()).count();
    pump.send(Message::GetStatus(pump_protocol::GetStatus {}))?;
    pump.wait("a StatusSnapshot answer", 10, |link| {
        live_snapshots(link).nth(seen).cloned()
    })
}

/// The service outlook (protocol 1.1, SR-BAT-004) of a new pump counting
/// its battery with the board's energy profile: nearly full, the ERI more
/// than its 90-day lead ahead and at least that lead before end of service,
/// and the status snapshot's refill-by date. (Seconds after the first boot
/// the average current still holds the boot's signature checks and writes,
/// and the e2e's basal is the board's fast 250 µL/h: the dates are months,
/// not years, away.)
fn check_outlook(
    pump: &mut Pump,
    status: &pump_protocol::StatusSnapshot,
) -> Result<(), String> {
    let from = pump.frame_count();
    pump.send(Message::GetServiceOutlook(pump_protocol::GetServiceOutlook {}))?;
    let outlook = pump.wait("a ServiceOutlook answer", 10, |link| {
        link.frames.iter().skip(from).find_map(|f| match &f.message {
            Message::ServiceOutlook(o) => Some(o.clone()),
            _ => None,
        })
    })?;
    const ERI_LEAD_MS: u64 = 90 * 86_400_000;
    let (Some(eri), Some(eos)) = (outlook.eri_time_ms, outlook.eos_time_ms) else {
        return Err(format!("no ERI or EOS date: {outlook:?}"));
    };
    if outlook.charge_percent < 99
        || outlook.replacement_recommended
        || outlook.end_of_service
        || eri < outlook.time_ms + ERI_LEAD_MS
        || eos < eri + ERI_LEAD_MS
        || outlook.refill_by_time_ms.is_none()
        || outlook.refill_by_time_ms.map(|t| t / 3_600_000)
            != status.refill_by_time_ms.map(|t| t / 3_600_000)
    {
        return Err(format!("implausible service outlook: {outlook:?} beside {status:?}"));
    }
    pump.log(&format!(
        "GetServiceOutlook: charge {} %, average {} nA, ERI in {} days, EOS in {} days, refill by {} (PASS)",
        outlook.charge_percent,
        outlook.average_current_na,
        (eri - outlook.time_ms) / 86_400_000,
        (eos - outlook.time_ms) / 86_400_000,
        outlook.refill_by_time_ms.unwrap_or(0)
    ));
    Ok(())
}

/// The `[sim] motor: N steps` count after asking for a fresh report (F7).
fn step_count(pump: &mut Pump) -> Result<u32, String> {
    let before = fs::read_to_string(&pump.kernel_log)
        .unwrap_or_default()
        .matches("[sim] motor: ")
        .count();
    pump.monitor("sendkey f7 200")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = fs::read_to_string(&pump.kernel_log).unwrap_or_default();
        if log.matches("[sim] motor: ").count() > before {
            return reported_steps(&log).ok_or("no step count in the kernel log".into());
        }
        if Instant::now() > deadline {
            return Err("no fresh step count in the kernel log".into());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Reads a new UART connection into the shared link (and `uart.bin`).
fn spawn_reader(uart: &UnixStream, args: &Args, link: &Arc<Mutex<Link>>) -> Result<(), String> {
    let reader = uart.try_clone().map_err(|e| e.to_string())?;
    let capture = args.out.join("uart.bin");
    let shared = Arc::clone(link);
    thread::spawn(move || read_uart(reader, &capture, &shared));
    Ok(())
}

fn read_uart(mut reader: UnixStream, capture: &Path, link: &Mutex<Link>) {
    // Appended: the capture spans every QEMU the run starts.
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(capture)
        .expect("open uart.bin");
    let mut decoder = StreamDecoder::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let _ = file.write_all(&buf[..n]);
        let _ = file.flush();
        let mut link = link.lock().unwrap();
        link.raw.extend_from_slice(&buf[..n]);
        let mut frames = Vec::new();
        decoder.feed(&buf[..n], |item| {
            if let StreamItem::Frame { frame, .. } = item {
                frames.push(frame);
            }
        });
        link.frames.extend(frames);
    }
}

/// The `[sim] motor: N steps` count in the newest report of the kernel log.
fn reported_steps(log: &str) -> Option<u32> {
    log.lines()
        .rev()
        .find_map(|line| line.strip_prefix("[sim] motor: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
}

fn run(args: &Args) -> Result<(), String> {
    let install =
        fs::read(&args.install).map_err(|e| format!("{}: {e}", args.install.display()))?;
    let mut pump = Pump::boot(args)?;
    pump.log("QEMU started; UART, monitor and kernel log connected");
    let install_change = fs::read(&args.install_change)
        .map_err(|e| format!("{}: {e}", args.install_change.display()))?;
    let result = scenario(&mut pump, &install, &install_change);
    // Every process's memory map (stack high-water marks) into the kernel log.
    let _ = pump.key("f8", "print the processes to the kernel log");
    thread::sleep(Duration::from_secs(2));
    // Give the pump a moment to flush its last answers into the capture.
    thread::sleep(Duration::from_millis(500));
    pump.quit();
    result
}

fn scenario(pump: &mut Pump, install: &[u8], install_change: &[u8]) -> Result<(), String> {
    pump.wait_text("telemetry: started", 20)?;
    pump.wait_text("dosing: started", 20)?;

    // 1. The rogue app runs its attempts first.
    pump.wait_text("rogue: done:", 60)?;

    // 2. The programmer: clock, prescription, refill.
    let (sequence, _) = pump.send_signed(Message::SetClock(SetClock {
        utc_time_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
    }))?;
    pump.expect_acked(sequence, "SetClock (signed)", 10)?;
    pump.log("installing the prescription signed by pumpctl rx sign");
    let from = pump.frame_count();
    pump.send_raw(install)?;
    pump.expect_ack(MessageKind::InstallPrescription, from, 20)?;
    let (sequence, _) = pump.send_signed(Message::Refill(Refill {
        withdrawn_volume_nl: 0,
        added_volume_nl: 20_000_000,
        concentration_ug_per_ml: 50,
    }))?;
    pump.expect_acked(sequence, "Refill (signed)", 10)?;
    pump.wait_text("dosing: prescription adopted", 15)?;
    let status = fresh_status(pump)?;
    pump.log(&format!(
        "GetStatus: {:?}, basal {} nL/h, reservoir {} nL, prescription serial {}",
        status.pump_state,
        status.basal_rate_nl_per_h,
        status.reservoir_nl,
        status.prescription_serial
    ));
    check_outlook(pump, &status)?;

    // 3. Basal runs; the patient asks for a bolus, then again too soon.
    thread::sleep(Duration::from_secs(12));
    pump.key("f1", "Button 1: patient bolus request")?;
    pump.wait_text("dosing: patient bolus granted", 10)?;
    pump.log("waiting for the 2-minute bolus to complete");
    pump.wait(
        "the patient bolus DeliveryRecord (Completed)",
        200,
        |link| {
            link.frames
                .iter()
                .any(|f| {
                    matches!(&f.message, Message::DeliveryRecord(r)
                    if r.delivery_kind == pump_protocol::DeliveryKind::PatientBolus
                    && r.outcome == pump_protocol::DeliveryOutcome::Completed)
                })
                .then_some(())
        },
    )?;
    pump.log("patient bolus completed");
    pump.key("f1", "Button 1 again, within the lockout")?;
    pump.wait_text("dosing: patient bolus denied: LockoutActive", 10)?;
    // The dosing app crashes; the kernel restarts it, and what only the
    // app knows comes back from its record in the capsule (command 27).
    pump.key("f9", "the dosing app crashes (the kernel faults it)")?;
    pump.wait_text("dosing: record restored", 15)?;
    pump.wait_text_nth("dosing: prescription adopted", 2, 15)?;

    // 4. The clinician orders a bolus through the programmer: 1 µg = 20 µL
    // over 100 s (720 µL/h, with the basal within the board's 1 mL/h).
    let bolus = Message::ClinicianBolus(ClinicianBolus {
        dose_ug: 1,
        duration_ms: 100_000,
    });
    let (bolus_sequence, genuine) = pump.send_signed(bolus.clone())?;
    pump.expect_acked(bolus_sequence, "ClinicianBolus (signed)", 15)?;
    let raw = pump.link.lock().unwrap().raw.clone();
    let ticket = relay_ticket(&raw, "ClinicianBolus")
        .ok_or("the dosing app never took the relayed ClinicianBolus")?;
    let granted = format!("dosing: relay: answer #{ticket}: accepted");
    let granted_at = find(&raw, granted.as_bytes())
        .ok_or(format!("the dosing app did not say \"{granted}\""))?;
    let early = frames_in(&raw[..granted_at]).iter().any(|f| {
        f.sequence() == bolus_sequence && matches!(&f.message, Message::Ack(_) | Message::Nack(_))
    });
    if early {
        return Err("the ClinicianBolus was answered before the dosing app granted it".into());
    }
    pump.log(&format!(
        "ClinicianBolus relayed as ticket {ticket}; \"{granted}\" precedes the Ack"
    ));
    // The power fails in the middle of the bolus: QEMU is killed and
    // started again on the same flash. Nothing of the bolus may be repeated.
    thread::sleep(Duration::from_secs(25));
    let before = fresh_status(pump)?;
    if before.bolus_remaining_nl == 0 {
        return Err("the clinician bolus was not running 25 s into it".into());
    }
    let steps = step_count(pump)?;
    pump.log(&format!(
        "before the power cut: bolus {} nL to go, reservoir {} nL, delivered in 24 h {} nL, serial {}; mechanism {steps} steps",
        before.bolus_remaining_nl, before.reservoir_nl, before.delivered_24h_nl, before.prescription_serial
    ));
    let restored = pump.text_count("dosing: record restored");
    let adopted = pump.text_count("dosing: prescription adopted");
    pump.power_cut()?;
    after_reset(
        pump,
        &before,
        Expected {
            reset_reason: 1,
            watchdog_resets: 0,
            record_restored: restored + 1,
            prescription_adopted: adopted + 1,
        },
        install,
    )?;
    // The bolus stays ended: its start is in the ledger, and nothing runs it again.
    thread::sleep(Duration::from_secs(5));
    let later = fresh_status(pump)?;
    if later.bolus_remaining_nl != 0 {
        return Err(format!(
            "a bolus runs again after the power cut ({} nL to go)",
            later.bolus_remaining_nl
        ));
    }
    let completed = pump.count(|m| {
        matches!(m, Message::DeliveryRecord(r)
            if r.delivery_kind == pump_protocol::DeliveryKind::ClinicianBolus
            && r.outcome == pump_protocol::DeliveryOutcome::Completed)
    });
    let interrupted = pump.count(|m| {
        matches!(m, Message::DeliveryRecord(r)
            if r.delivery_kind == pump_protocol::DeliveryKind::ClinicianBolus
            && r.outcome == pump_protocol::DeliveryOutcome::Interrupted)
    });
    if completed != 0 || interrupted != 1 {
        return Err(format!(
            "clinician bolus after the power cut: {completed} completed, {interrupted} interrupted (want 0 and 1)"
        ));
    }
    pump.log("the clinician bolus was closed as Interrupted at the restore and not repeated");
    // The attacker on the link, after the reset: a bolus signed with a key
    // of its own, the genuine bolus recorded before the reset and sent
    // again (its counter survived in the floor record), and a plain (1.0)
    // suspend.
    let attacker = SigningKey::from_bytes(&[0xA5; 32]);
    let forged = signed(&bolus, &attacker, pump.last_counter + 1_000)?;
    let sequence = pump.send(forged)?;
    pump.expect_refused(
        sequence,
        "forged ClinicianBolus",
        ErrorCode::Unauthenticated,
        10,
    )?;
    let sequence = pump.send(genuine)?;
    pump.expect_refused(
        sequence,
        "ClinicianBolus signed before the power cut, replayed after it",
        ErrorCode::Replayed,
        10,
    )?;
    let sequence = pump.send(Message::Suspend(pump_protocol::Suspend {}))?;
    pump.expect_refused(sequence, "unsigned Suspend", ErrorCode::Unauthenticated, 10)?;
    thread::sleep(Duration::from_secs(3));
    let boluses = pump.count(|m| {
        matches!(m, Message::DeliveryRecord(r)
            if r.delivery_kind == pump_protocol::DeliveryKind::ClinicianBolus
            && matches!(r.outcome, pump_protocol::DeliveryOutcome::Completed
                | pump_protocol::DeliveryOutcome::Interrupted
                | pump_protocol::DeliveryOutcome::Stopped
                | pump_protocol::DeliveryOutcome::Aborted))
    });
    if boluses != 1 {
        return Err(format!("{boluses} clinician boluses: the attacker's acted"));
    }
    pump.log("the attacker's three commands were refused; still one clinician bolus");
    // Suspend and resume: the capsule accepts them, and the notices reach
    // the dosing app, which runs the basal again.
    let (sequence, _) = pump.send_signed(Message::Suspend(pump_protocol::Suspend {}))?;
    pump.expect_acked(sequence, "Suspend (signed)", 10)?;
    pump.wait_text("dosing: relay: Suspend #", 10)?;
    let (sequence, resume) = pump.send_signed(Message::Resume(pump_protocol::Resume {}))?;
    pump.expect_acked(sequence, "Resume (signed)", 10)?;
    pump.wait_text("dosing: relay: Resume #", 10)?;
    let resumed_at = step_count(pump)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        thread::sleep(Duration::from_secs(2));
        let steps = step_count(pump)?;
        if steps > resumed_at {
            pump.log(&format!(
                "basal runs again after Resume: {resumed_at} -> {steps} steps"
            ));
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no motor step within 20 s of Resume ({steps} steps)"
            ));
        }
    }

    // 4b. The kernel loop hangs (F10): the board's watchdog stops the
    // machine, and QEMU starts again on the same flash. Twice: the second
    // watchdog reset in a row raises RepeatedResets, which the clinic clears.
    for watchdog_resets in 1..=2u16 {
        let before = fresh_status(pump)?;
        let restored = pump.text_count("dosing: record restored");
        let adopted = pump.text_count("dosing: prescription adopted");
        pump.key("f10", "hang the kernel loop (watchdog test)")?;
        pump.await_watchdog_reset(20)?;
        after_reset(
            pump,
            &before,
            Expected {
                reset_reason: 2,
                watchdog_resets,
                record_restored: restored + 1,
                prescription_adopted: adopted + 1,
            },
            install,
        )?;
        let sequence = pump.send(resume.clone())?;
        pump.expect_refused(
            sequence,
            "Resume signed before the watchdog reset, replayed after it",
            ErrorCode::Replayed,
            10,
        )?;
    }
    pump.wait("AlarmRaised(RepeatedResets)", 10, |link| {
        link.frames
            .iter()
            .any(|f| {
                matches!(&f.message, Message::AlarmRaised(a)
                    if a.code == pump_protocol::AlarmCode::RepeatedResets
                    && a.priority == pump_protocol::AlarmPriority::Medium)
            })
            .then_some(())
    })?;
    pump.log("second watchdog reset in a row: AlarmRaised(RepeatedResets, Medium)");
    let (sequence, _) = pump.send_signed(Message::ClearFault(pump_protocol::ClearFault {
        code: pump_protocol::AlarmCode::RepeatedResets,
    }))?;
    pump.expect_acked(sequence, "ClearFault(RepeatedResets) (signed)", 10)?;

    // 5. A change of concentration: the new prescription first (the
    // catheter still holds the old drug, so nothing is flushed yet), then the
    // refill that puts the new drug in the reservoir. The dosing app hears of
    // both through the relay and runs the bridge bolus at the old rate.
    pump.log("installing prescription serial 2: the same drug at twice the concentration");
    let from = pump.frame_count();
    pump.send_raw(install_change)?;
    pump.expect_ack(MessageKind::InstallPrescription, from, 20)?;
    pump.wait_text_nth("dosing: relay: InstallPrescription #", 2, 10)?;
    // The old drug is still in the pump: it runs on, capped at the new
    // envelope's rate (lower in volume at the higher concentration).
    let deadline = Instant::now() + Duration::from_secs(10);
    let before_refill = loop {
        let now = fresh_status(pump)?;
        if now.prescription_serial == 2 && now.basal_rate_nl_per_h > 0 {
            pump.log(&format!(
                "old drug runs on until the refill: basal {} nL/h",
                now.basal_rate_nl_per_h
            ));
            break now;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no basal between the new prescription and the refill (serial {}, basal {} nL/h)",
                now.prescription_serial, now.basal_rate_nl_per_h
            ));
        }
        thread::sleep(Duration::from_secs(1));
    };
    let (sequence, _) = pump.send_signed(Message::Refill(Refill {
        withdrawn_volume_nl: before_refill.reservoir_nl,
        added_volume_nl: 20_000_000,
        concentration_ug_per_ml: 100,
    }))?;
    pump.expect_acked(sequence, "Refill of the new drug (signed)", 10)?;
    pump.wait_text_nth("dosing: relay: Refill #", 2, 10)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        thread::sleep(Duration::from_secs(2));
        let now = fresh_status(pump)?;
        if now.bolus_remaining_nl > 0 && now.prescription_serial == 2 {
            pump.log(&format!(
                "bridge bolus running after the refill: {} nL to go, basal {} nL/h, reservoir {} nL",
                now.bolus_remaining_nl, now.basal_rate_nl_per_h, now.reservoir_nl
            ));
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no bridge bolus within 20 s of the refill (last status: serial {}, bolus {} nL)",
                now.prescription_serial, now.bolus_remaining_nl
            ));
        }
    }

    // 6. Motor stall.
    // A fresh report (an older one is in the log already).
    let steps_before = step_count(pump)?;
    pump.log(&format!("mechanism: {steps_before} steps so far"));
    pump.key("f5", "jam the motor")?;
    pump.wait("AlarmRaised(MotorStall)", 10, |link| {
        link.frames
            .iter()
            .any(|f| {
                matches!(&f.message, Message::AlarmRaised(a)
                    if a.code == pump_protocol::AlarmCode::MotorStall)
            })
            .then_some(())
    })?;
    pump.log("AlarmRaised(MotorStall) received");
    let stalled = pump.wait_kernel_log("[sim] motor driver disabled", 5)?;
    let _ = stalled;
    thread::sleep(Duration::from_secs(8));
    pump.key("f7", "report the step count again")?;
    thread::sleep(Duration::from_secs(1));
    let after = fs::read_to_string(&pump.kernel_log).unwrap_or_default();
    let steps_after = reported_steps(&after).ok_or("no step count in the kernel log")?;
    pump.log(&format!(
        "mechanism: {steps_after} steps 8 s after the stall (basal steps every 3.6 s before it)"
    ));
    if !after.contains("steps missed") || steps_after > steps_before + 1 {
        return Err(format!(
            "the motor kept moving after the stall: {steps_before} -> {steps_after} steps"
        ));
    }

    // 6b. Self-tests: the power-on RAM test passed at every boot, and an
    // injected failure (F11: the board reports a failed program-memory
    // check) is logged and raises the high SelfTestFailed alarm.
    let kernel_log = fs::read_to_string(&pump.kernel_log).unwrap_or_default();
    let posts = kernel_log.matches("[post] RAM test over 1024 bytes: passed").count();
    if posts != pump.lives || kernel_log.contains("RAM test over 1024 bytes: FAILED") {
        return Err(format!(
            "power-on RAM test: {posts} passes in {} lives",
            pump.lives
        ));
    }
    pump.log(&format!("power-on RAM test passed in each of the {posts} lives"));
    pump.key("f11", "a self-test fails (injected)")?;
    pump.wait("SelfTestFailed and AlarmRaised(SelfTestFailed)", 10, |link| {
        let event = link.frames.iter().any(|f| {
            matches!(&f.message, Message::SelfTestFailed(s)
                if s.test == 2 && s.detail == 0xBAD0_C0DE)
        });
        let alarm = link.frames.iter().any(|f| {
            matches!(&f.message, Message::AlarmRaised(a)
                if a.code == pump_protocol::AlarmCode::SelfTestFailed
                    && a.priority == pump_protocol::AlarmPriority::High)
        });
        (event && alarm).then_some(())
    })?;
    pump.log("SelfTestFailed (program memory) logged and its high alarm raised (PASS)");

    // 7. Read the whole log back: every event of the four lives is in it.
    let upto = pump.frame_count();
    check_log(pump, upto, "at the end")?;
    let total = step_count(pump)?;
    pump.log(&format!(
        "mechanism: {total} steps in all, over {} lives of the pump",
        pump.lives
    ));
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("pump-e2e: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("pump-e2e: FAIL: {e}");
        std::process::exit(1);
    }
    println!(
        "pump-e2e: scenario complete; capture in {}",
        args.out.join("uart.bin").display()
    );
}
