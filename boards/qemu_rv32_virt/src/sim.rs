//! Simulated pump hardware for the QEMU board, in safe Rust.
//!
//! QEMU's `virt` machine has no GPIO, PWM or flash, so the board gives the
//! infusion capsule's HIL adapters simulated devices instead:
//!
//! - [`SimOutputPin`]: the stepper driver's STEP, DIR and ENABLE lines, which
//!   report their edges to the [`SimMechanism`].
//! - [`SimMechanism`]: the motor and its stall detector. Each STEP rising
//!   edge with the driver enabled moves the mechanism one step, unless it is
//!   jammed; a jam is detected after [`STALL_DETECT_MS`] (alarm-driven) and
//!   asserts the fault input.
//! - [`SimInputPin`]: an interrupt-capable input (the stall/occlusion
//!   line, Button 1) whose level the simulation drives.
//! - [`SimBuzzer`], [`SimLed`]: print what they would sound or show.
//! - The pump's flash is a host file (`flash`), and the mechanism's
//!   position is kept in one too: a plunger does not forget where it is
//!   when the electronics reset, so the step count spans QEMU restarts.
//! - [`SimKeys`]: the host's hand on the hardware, through a VirtIO
//!   keyboard (`sendkey` on the QEMU monitor): F1 is Button 1 (patient
//!   bolus request), F5 jams the motor, F6 clears the jam, F7 prints the
//!   mechanism's state, F8 prints every process (memory map with stack
//!   high-water marks) to the kernel log, F9 crashes the dosing app (the
//!   kernel faults it as it would on a memory fault, and the board's fault
//!   policy restarts it), F10 hangs the kernel loop (the board's watchdog
//!   resets the machine), F11 reports a failed hardware self-test (the
//!   capsule stops delivery under the `SelfTestFailed` alarm).

use core::cell::Cell;
use kernel::debug;
use kernel::hil::buzzer::{Buzzer, BuzzerClient};
use kernel::hil::gpio::{self, Configuration, FloatingState, InterruptEdge};
use kernel::hil::keyboard::KeyboardClient;
use kernel::hil::led::Led;
use kernel::hil::time::{Alarm, AlarmClient, ConvertTicks};
use kernel::utilities::cells::OptionalCell;
use kernel::ErrorCode;

use crate::semihost::HostFile;

/// Time from a jammed step to the stall detector asserting its line.
pub const STALL_DETECT_MS: u32 = 20;

/// Linux input key codes the simulation listens to.
pub mod keys {
    /// Button 1: patient bolus request.
    pub const F1: u16 = 59;
    /// Jam the motor.
    pub const F5: u16 = 63;
    /// Clear the jam.
    pub const F6: u16 = 64;
    /// Print the mechanism's state.
    pub const F7: u16 = 65;
    /// Print every process.
    pub const F8: u16 = 66;
    /// Crash the dosing app.
    pub const F9: u16 = 67;
    /// Hang the kernel loop (the watchdog test).
    pub const F10: u16 = 68;
    /// Inject a failed hardware self-test.
    pub const F11: u16 = 87;
}

/// Where F11's injected self-test failure goes (the capsule).
pub trait SelfTestInjector {
    /// Reports a failed self-test, as a board test that found a fault would.
    fn inject_self_test_failure(&self);
}

/// Which line an output pin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// STEP.
    Step,
    /// DIR.
    Dir,
    /// ENABLE.
    Enable,
}

/// Receives the edges of simulated output pins.
pub trait LineListener {
    /// `line` changed to `high`.
    fn line_changed(&self, line: Line, high: bool);
}

/// A simulated output pin.
pub struct SimOutputPin<'a> {
    line: Line,
    high: Cell<bool>,
    config: Cell<Configuration>,
    listener: OptionalCell<&'a dyn LineListener>,
}

impl<'a> SimOutputPin<'a> {
    pub const fn new(line: Line) -> Self {
        Self {
            line,
            high: Cell::new(false),
            config: Cell::new(Configuration::LowPower),
            listener: OptionalCell::empty(),
        }
    }

    pub fn set_listener(&self, listener: &'a dyn LineListener) {
        self.listener.set(listener);
    }

    fn drive(&self, high: bool) {
        if self.high.replace(high) != high {
            self.listener
                .map(|listener| listener.line_changed(self.line, high));
        }
    }
}

impl gpio::Configure for SimOutputPin<'_> {
    fn configuration(&self) -> Configuration {
        self.config.get()
    }
    fn make_output(&self) -> Configuration {
        self.config.set(Configuration::Output);
        Configuration::Output
    }
    fn disable_output(&self) -> Configuration {
        self.config.set(Configuration::LowPower);
        Configuration::LowPower
    }
    fn make_input(&self) -> Configuration {
        self.config.get()
    }
    fn disable_input(&self) -> Configuration {
        self.config.get()
    }
    fn deactivate_to_low_power(&self) {
        self.config.set(Configuration::LowPower);
    }
    fn set_floating_state(&self, _state: FloatingState) {}
    fn floating_state(&self) -> FloatingState {
        FloatingState::PullNone
    }
}

impl gpio::Output for SimOutputPin<'_> {
    fn set(&self) {
        self.drive(true);
    }
    fn clear(&self) {
        self.drive(false);
    }
    fn toggle(&self) -> bool {
        let high = !self.high.get();
        self.drive(high);
        high
    }
}

impl gpio::Input for SimOutputPin<'_> {
    fn read(&self) -> bool {
        self.high.get()
    }
}

/// A simulated interrupt-capable input pin.
pub struct SimInputPin<'a> {
    high: Cell<bool>,
    edge: Cell<Option<InterruptEdge>>,
    floating: Cell<FloatingState>,
    client: OptionalCell<&'a dyn gpio::Client>,
}

impl<'a> SimInputPin<'a> {
    /// A pin idling at `high`.
    pub const fn new(high: bool) -> Self {
        Self {
            high: Cell::new(high),
            edge: Cell::new(None),
            floating: Cell::new(FloatingState::PullNone),
            client: OptionalCell::empty(),
        }
    }

    /// The simulation sets the level; an enabled edge interrupts.
    pub fn drive(&self, high: bool) {
        if self.high.replace(high) == high {
            return;
        }
        let fires = match self.edge.get() {
            Some(InterruptEdge::EitherEdge) => true,
            Some(InterruptEdge::RisingEdge) => high,
            Some(InterruptEdge::FallingEdge) => !high,
            None => false,
        };
        if fires {
            self.client.map(|client| client.fired());
        }
    }
}

impl gpio::Configure for SimInputPin<'_> {
    fn configuration(&self) -> Configuration {
        Configuration::Input
    }
    fn make_output(&self) -> Configuration {
        Configuration::Input
    }
    fn disable_output(&self) -> Configuration {
        Configuration::Input
    }
    fn make_input(&self) -> Configuration {
        Configuration::Input
    }
    fn disable_input(&self) -> Configuration {
        Configuration::Input
    }
    fn deactivate_to_low_power(&self) {}
    fn set_floating_state(&self, state: FloatingState) {
        self.floating.set(state);
    }
    fn floating_state(&self) -> FloatingState {
        self.floating.get()
    }
}

impl gpio::Output for SimInputPin<'_> {
    fn set(&self) {}
    fn clear(&self) {}
    fn toggle(&self) -> bool {
        self.high.get()
    }
}

impl gpio::Input for SimInputPin<'_> {
    fn read(&self) -> bool {
        self.high.get()
    }
}

impl<'a> gpio::Interrupt<'a> for SimInputPin<'a> {
    fn set_client(&self, client: &'a dyn gpio::Client) {
        self.client.set(client);
    }
    fn enable_interrupts(&self, mode: InterruptEdge) {
        self.edge.set(Some(mode));
    }
    fn disable_interrupts(&self) {
        self.edge.set(None);
    }
    fn is_pending(&self) -> bool {
        false
    }
}

/// The motor mechanism and its stall detector. Its step count is the
/// plunger's position: kept in a host file, written at every step, so it
/// counts every step the motor ever made on this mechanism, across resets
/// and QEMU restarts.
pub struct SimMechanism<'a, A: Alarm<'a>> {
    alarm: &'a A,
    position: Option<&'a HostFile>,
    fault: &'a SimInputPin<'a>,
    enable_active_low: bool,
    enabled: Cell<bool>,
    steps: Cell<u32>,
    steps_this_run: Cell<u32>,
    jammed: Cell<bool>,
    missed: Cell<u32>,
}

impl<'a, A: Alarm<'a>> SimMechanism<'a, A> {
    pub fn new(
        alarm: &'a A,
        fault: &'a SimInputPin<'a>,
        enable_active_low: bool,
        position: Option<&'a HostFile>,
    ) -> Self {
        let mut stored = [0u8; 4];
        let steps = match position {
            Some(file) if file.read_at(0, &mut stored) => u32::from_le_bytes(stored),
            _ => 0,
        };
        Self {
            alarm,
            position,
            fault,
            enable_active_low,
            enabled: Cell::new(false),
            steps: Cell::new(steps),
            steps_this_run: Cell::new(0),
            jammed: Cell::new(false),
            missed: Cell::new(0),
        }
    }

    /// Jams the mechanism: the stall detector fires shortly after.
    pub fn jam(&self) {
        if self.jammed.replace(true) {
            return;
        }
        debug!("[sim] motor jammed (stall injected)");
        self.alarm
            .set_alarm(self.alarm.now(), self.alarm.ticks_from_ms(STALL_DETECT_MS));
    }

    /// Frees the mechanism and releases the fault line.
    pub fn clear(&self) {
        self.jammed.set(false);
        let _ = self.alarm.disarm();
        self.fault.drive(false);
        debug!("[sim] jam cleared, fault input released");
    }

    pub fn report(&self) {
        debug!(
            "[sim] motor: {} steps, driver {}, {}, {} steps missed",
            self.steps.get(),
            if self.enabled.get() {
                "enabled"
            } else {
                "disabled"
            },
            if self.jammed.get() { "jammed" } else { "free" },
            self.missed.get()
        );
    }
}

impl<'a, A: Alarm<'a>> LineListener for SimMechanism<'a, A> {
    fn line_changed(&self, line: Line, high: bool) {
        match line {
            Line::Enable => {
                let enabled = high != self.enable_active_low;
                if self.enabled.replace(enabled) != enabled {
                    if enabled {
                        self.steps_this_run.set(0);
                        debug!("[sim] motor driver enabled");
                    } else {
                        debug!(
                            "[sim] motor driver disabled after {} steps ({} total)",
                            self.steps_this_run.get(),
                            self.steps.get()
                        );
                    }
                }
            }
            Line::Step if high && self.enabled.get() => {
                if self.jammed.get() {
                    self.missed.set(self.missed.get() + 1);
                } else {
                    let steps = self.steps.get() + 1;
                    self.steps.set(steps);
                    self.steps_this_run.set(self.steps_this_run.get() + 1);
                    if let Some(file) = self.position {
                        let _ = file.write_at(0, &steps.to_le_bytes());
                    }
                }
            }
            _ => {}
        }
    }
}

impl<'a, A: Alarm<'a>> AlarmClient for SimMechanism<'a, A> {
    fn alarm(&self) {
        if self.jammed.get() {
            debug!("[sim] stall detector: fault input asserted");
            self.fault.drive(true);
        }
    }
}

/// A buzzer that prints its tone changes.
pub struct SimBuzzer<'a, A: Alarm<'a>> {
    alarm: &'a A,
    sounding: Cell<usize>,
    client: OptionalCell<&'a dyn BuzzerClient>,
}

impl<'a, A: Alarm<'a>> SimBuzzer<'a, A> {
    pub fn new(alarm: &'a A) -> Self {
        Self {
            alarm,
            sounding: Cell::new(0),
            client: OptionalCell::empty(),
        }
    }
}

impl<'a, A: Alarm<'a>> Buzzer<'a> for SimBuzzer<'a, A> {
    fn buzz(&self, frequency_hz: usize, duration_ms: usize) -> Result<(), ErrorCode> {
        if self.sounding.replace(frequency_hz) != frequency_hz {
            debug!("[sim] buzzer: {} Hz bursts", frequency_hz);
        }
        let ms = u32::try_from(duration_ms).unwrap_or(u32::MAX);
        self.alarm
            .set_alarm(self.alarm.now(), self.alarm.ticks_from_ms(ms));
        Ok(())
    }

    fn stop(&self) -> Result<(), ErrorCode> {
        if self.sounding.replace(0) != 0 {
            debug!("[sim] buzzer: off");
        }
        let _ = self.alarm.disarm();
        Ok(())
    }

    fn set_client(&self, client: &'a dyn BuzzerClient) {
        self.client.set(client);
    }
}

impl<'a, A: Alarm<'a>> AlarmClient for SimBuzzer<'a, A> {
    fn alarm(&self) {
        self.client.map(|client| client.buzzer_done(Ok(())));
    }
}

/// An LED that prints when it changes.
pub struct SimLed {
    name: &'static str,
    on: Cell<bool>,
}

impl SimLed {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            on: Cell::new(false),
        }
    }

    fn show(&self, on: bool) {
        if self.on.replace(on) != on {
            debug!("[sim] LED {}: {}", self.name, if on { "on" } else { "off" });
        }
    }
}

impl Led for SimLed {
    fn init(&self) {}
    fn on(&self) {
        self.show(true);
    }
    fn off(&self) {
        self.show(false);
    }
    fn toggle(&self) {
        self.show(!self.on.get());
    }
    fn read(&self) -> bool {
        self.on.get()
    }
}

/// F10: the kernel loop stops here for good, with interrupts enabled, as an
/// endless loop in a capsule or an interrupt's bottom half would. Only the
/// board's watchdog gets the pump out of it.
fn hang() -> ! {
    crate::semihost::print_now("[sim] F10: the kernel loop hangs (watchdog test)\n");
    loop {
        core::hint::spin_loop();
    }
}

/// The processes, as the simulation's keys reach them.
pub trait ProcessReport {
    /// Prints every process (F8).
    fn report(&self);
    /// Faults the process named `name` (F9), as a memory fault would.
    fn fault(&self, name: &str);
}

/// The host's keys on the simulated hardware.
pub struct SimKeys<'a, A: Alarm<'a>> {
    button: &'a SimInputPin<'a>,
    mechanism: &'a SimMechanism<'a, A>,
    processes: &'a dyn ProcessReport,
    self_tests: &'a dyn SelfTestInjector,
}

impl<'a, A: Alarm<'a>> SimKeys<'a, A> {
    pub fn new(
        button: &'a SimInputPin<'a>,
        mechanism: &'a SimMechanism<'a, A>,
        processes: &'a dyn ProcessReport,
        self_tests: &'a dyn SelfTestInjector,
    ) -> Self {
        Self {
            button,
            mechanism,
            processes,
            self_tests,
        }
    }
}

impl<'a, A: Alarm<'a>> KeyboardClient for SimKeys<'a, A> {
    fn keys_pressed(&self, keys: &[(u16, bool)], result: Result<(), ErrorCode>) {
        if result.is_err() {
            return;
        }
        for &(key, pressed) in keys {
            match key {
                keys::F1 => {
                    if pressed {
                        debug!("[sim] Button 1 pressed");
                    }
                    // Button 1 is active low on the DK; the simulation drives
                    // the logical level the button driver reads as pressed.
                    self.button.drive(!pressed);
                }
                keys::F5 if pressed => self.mechanism.jam(),
                keys::F6 if pressed => self.mechanism.clear(),
                keys::F7 if pressed => self.mechanism.report(),
                keys::F8 if pressed => self.processes.report(),
                keys::F9 if pressed => self.processes.fault("dosing"),
                keys::F10 if pressed => hang(),
                keys::F11 if pressed => {
                    debug!("[sim] F11: a self-test fails (injected)");
                    self.self_tests.inject_self_test_failure();
                }
                _ => {}
            }
        }
    }
}
