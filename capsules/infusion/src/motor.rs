//! Stepper motor over GPIO: STEP, DIR and ENABLE outputs (a DRV8834-style
//! driver) and a fault input (stall or occlusion detector), with step pulses
//! timed by an alarm.
//!
//! Steps are queued and pulsed one at a time: STEP active for `high_us`, then
//! inactive for `low_us`. The motor only ever turns forward. When the fault
//! input asserts, the adapter drops the enable line and every queued step
//! itself, before it tells the capsule, so the motor stops even if the core
//! were slow to react.

use core::cell::Cell;
use kernel::hil::gpio::{self, ActivationMode, ActivationState, InterruptEdge};
use kernel::hil::time::{Alarm, AlarmClient, ConvertTicks};
use kernel::utilities::cells::OptionalCell;
use pump_protocol::AlarmCode;

use crate::platform::{FaultClient, PumpMotor};

/// Pin polarities and pulse timing.
#[derive(Clone, Copy)]
pub struct StepperConfig {
    /// How the ENABLE pin is driven (`ActiveLow` for a DRV8834 `nENBL`).
    pub enable_mode: ActivationMode,
    /// The DIR level for forward (infusing) rotation.
    pub forward: ActivationState,
    /// How the fault input reads when the fault is present.
    pub fault_mode: ActivationMode,
    /// Pull resistor on the fault input.
    pub fault_floating: gpio::FloatingState,
    /// The alarm condition the fault input reports.
    pub fault_code: AlarmCode,
    /// STEP pulse width.
    pub high_us: u32,
    /// Time between pulses.
    pub low_us: u32,
}

/// The stepper adapter. See the module documentation.
pub struct StepperMotor<'a, A: Alarm<'a>, P: gpio::Pin, F: gpio::InterruptPin<'a>> {
    step_pin: &'a P,
    dir_pin: &'a P,
    enable_pin: &'a P,
    fault_pin: &'a F,
    alarm: &'a A,
    config: StepperConfig,
    enabled: Cell<bool>,
    queued: Cell<u32>,
    pulsing: Cell<bool>,
    pulse_high: Cell<bool>,
    steps_made: Cell<u32>,
    fault_client: OptionalCell<&'a dyn FaultClient>,
}

impl<'a, A: Alarm<'a>, P: gpio::Pin, F: gpio::InterruptPin<'a>> StepperMotor<'a, A, P, F> {
    /// The adapter; call [`init`](Self::init) once the clients are set.
    pub fn new(
        step_pin: &'a P,
        dir_pin: &'a P,
        enable_pin: &'a P,
        fault_pin: &'a F,
        alarm: &'a A,
        config: StepperConfig,
    ) -> Self {
        Self {
            step_pin,
            dir_pin,
            enable_pin,
            fault_pin,
            alarm,
            config,
            enabled: Cell::new(false),
            queued: Cell::new(0),
            pulsing: Cell::new(false),
            pulse_high: Cell::new(false),
            steps_made: Cell::new(0),
            fault_client: OptionalCell::empty(),
        }
    }

    /// Configures the pins (driver disabled, forward) and the fault interrupt.
    pub fn init(&self) {
        self.step_pin.make_output();
        self.step_pin.clear();
        self.dir_pin.make_output();
        self.dir_pin
            .write_activation(self.config.forward, ActivationMode::ActiveHigh);
        self.enable_pin.make_output();
        self.write_enable(false);
        self.fault_pin.make_input();
        self.fault_pin
            .set_floating_state(self.config.fault_floating);
        self.fault_pin.enable_interrupts(InterruptEdge::EitherEdge);
    }

    /// Where fault input changes go (the capsule).
    pub fn set_fault_client(&self, client: &'a dyn FaultClient) {
        self.fault_client.set(client);
    }

    /// Steps pulsed since boot.
    pub fn steps_made(&self) -> u32 {
        self.steps_made.get()
    }

    /// Whether the fault input currently reads as asserted.
    pub fn fault_asserted(&self) -> bool {
        self.fault_pin.read_activation(self.config.fault_mode) == ActivationState::Active
    }

    fn write_enable(&self, on: bool) {
        let state = if on {
            ActivationState::Active
        } else {
            ActivationState::Inactive
        };
        self.enable_pin
            .write_activation(state, self.config.enable_mode);
    }

    fn stop(&self) {
        self.queued.set(0);
        self.step_pin.clear();
        self.pulse_high.set(false);
        self.write_enable(false);
    }

    fn start_pulse(&self) {
        self.pulsing.set(true);
        self.pulse_high.set(true);
        self.step_pin.set();
        self.steps_made.set(self.steps_made.get().wrapping_add(1));
        let dt = self.alarm.ticks_from_us(self.config.high_us);
        self.alarm.set_alarm(self.alarm.now(), dt);
    }
}

impl<'a, A: Alarm<'a>, P: gpio::Pin, F: gpio::InterruptPin<'a>> PumpMotor
    for StepperMotor<'a, A, P, F>
{
    fn set_enabled(&self, enabled: bool) {
        if enabled && self.fault_asserted() {
            return;
        }
        self.enabled.set(enabled);
        if enabled {
            self.write_enable(true);
        } else {
            self.stop();
        }
    }

    fn step(&self) {
        if !self.enabled.get() {
            return;
        }
        self.queued.set(self.queued.get().saturating_add(1));
        if !self.pulsing.get() {
            self.queued.set(self.queued.get() - 1);
            self.start_pulse();
        }
    }
}

impl<'a, A: Alarm<'a>, P: gpio::Pin, F: gpio::InterruptPin<'a>> AlarmClient
    for StepperMotor<'a, A, P, F>
{
    fn alarm(&self) {
        if self.pulse_high.get() {
            // End of the STEP pulse; wait out the low time.
            self.pulse_high.set(false);
            self.step_pin.clear();
            let dt = self.alarm.ticks_from_us(self.config.low_us);
            self.alarm.set_alarm(self.alarm.now(), dt);
            return;
        }
        let queued = self.queued.get();
        if queued > 0 && self.enabled.get() {
            self.queued.set(queued - 1);
            self.start_pulse();
        } else {
            self.pulsing.set(false);
        }
    }
}

impl<'a, A: Alarm<'a>, P: gpio::Pin, F: gpio::InterruptPin<'a>> gpio::Client
    for StepperMotor<'a, A, P, F>
{
    fn fired(&self) {
        let asserted = self.fault_asserted();
        if asserted {
            // Hardware interlock first: no further step, driver off.
            self.enabled.set(false);
            self.stop();
        }
        self.fault_client
            .map(|client| client.fault_input_changed(self.config.fault_code, asserted));
    }
}
