extern crate std;

use super::*;
use core::cell::{Cell, RefCell};
use libtock_platform::share;
use libtock_unittest::{
    command_return, fake, DriverInfo, DriverShareRef, RoAllowBuffer, RwAllowBuffer,
};
use std::rc::Rc;
use std::vec::Vec;

type Api = Infusion<fake::Syscalls>;

/// A fake capsule: the command table's shape, one caller role, recorded
/// inputs, canned outputs, and upcalls on request.
struct FakeInfusion {
    telemetry: bool,
    input: RefCell<RoAllowBuffer>,
    output: RefCell<RwAllowBuffer>,
    installed: RefCell<Vec<u8>>,
    record: RefCell<Vec<u8>>,
    basal: Cell<u32>,
    clock: Cell<u64>,
    share_ref: DriverShareRef,
}

impl FakeInfusion {
    fn new(telemetry: bool) -> Rc<Self> {
        Rc::new(Self {
            telemetry,
            input: Default::default(),
            output: Default::default(),
            installed: Default::default(),
            record: Default::default(),
            basal: Cell::new(0),
            clock: Cell::new(0),
            share_ref: Default::default(),
        })
    }
}

const NODEVICE_NOT_PERMITTED: (ErrorCode, u32) = (ErrorCode::NoDevice, 6);

impl fake::SyscallDriver for FakeInfusion {
    fn info(&self) -> DriverInfo {
        DriverInfo::new(DRIVER_NUM).upcall_count(6)
    }

    fn register(&self, share_ref: DriverShareRef) {
        self.share_ref.replace(share_ref);
    }

    fn allow_readonly(
        &self,
        num: u32,
        buffer: RoAllowBuffer,
    ) -> Result<RoAllowBuffer, (RoAllowBuffer, ErrorCode)> {
        if num == 0 {
            Ok(self.input.replace(buffer))
        } else {
            Err((buffer, ErrorCode::Invalid))
        }
    }

    fn allow_readwrite(
        &self,
        num: u32,
        buffer: RwAllowBuffer,
    ) -> Result<RwAllowBuffer, (RwAllowBuffer, ErrorCode)> {
        if num == 0 {
            Ok(self.output.replace(buffer))
        } else {
            Err((buffer, ErrorCode::Invalid))
        }
    }

    fn command(&self, num: u32, a: u32, b: u32) -> libtock_platform::CommandReturn {
        let refuse =
            || command_return::failure_u32(NODEVICE_NOT_PERMITTED.0, NODEVICE_NOT_PERMITTED.1);
        match num {
            command::EXISTS => command_return::success(),
            command::STATUS => command_return::success_3_u32(1 | (0x0003 << 16), 20_000_000, 4_000),
            command::SET_BASAL if self.telemetry => refuse(),
            command::SET_BASAL => {
                self.basal.set(a);
                command_return::success()
            }
            command::PATIENT_BOLUS if self.telemetry => refuse(),
            command::PATIENT_BOLUS => {
                if a > 100_000 {
                    let _ = self.share_ref.schedule_upcall(1, (2, 13, a));
                    // BolusAboveEnvelope (13) is INVAL.
                    return command_return::failure_u32(ErrorCode::Invalid, 13);
                }
                let _ = self.share_ref.schedule_upcall(1, (2, 0, a));
                let _ = self.share_ref.schedule_upcall(0, (2, 0, a));
                command_return::success()
            }
            command::CHECK_IN => command_return::success_u32(60_000),
            command::INSTALL_PRESCRIPTION if !self.telemetry => refuse(),
            command::INSTALL_PRESCRIPTION => {
                let input = self.input.borrow();
                match input.get(..a as usize) {
                    Some(bytes) => {
                        *self.installed.borrow_mut() = bytes.to_vec();
                        let _ = self.share_ref.schedule_upcall(2, (1, 0, 0));
                        command_return::success()
                    }
                    None => command_return::failure_u32(ErrorCode::Invalid, 21),
                }
            }
            command::DRAIN_EVENTS if !self.telemetry => refuse(),
            command::DRAIN_EVENTS => {
                let mut output = self.output.borrow_mut();
                let frame = [0u8, 5, 1, 2, 3, 4, 0];
                if output.len() < frame.len() {
                    return command_return::success_2_u32(0, 0);
                }
                output[..frame.len()].copy_from_slice(&frame);
                command_return::success_2_u32(frame.len() as u32, 1)
            }
            command::READ_PRESCRIPTION => {
                let installed = self.installed.borrow();
                let mut output = self.output.borrow_mut();
                if installed.is_empty() {
                    return command_return::failure_u32(ErrorCode::Reserve, 11);
                }
                output[..installed.len()].copy_from_slice(&installed);
                command_return::success_u32(installed.len() as u32)
            }
            command::SET_CLOCK if !self.telemetry => refuse(),
            command::SET_CLOCK => {
                self.clock.set(u64::from(a) | (u64::from(b) << 32));
                command_return::success()
            }
            command::SAVE_APP_RECORD if self.telemetry => refuse(),
            command::SAVE_APP_RECORD => match self.input.borrow().get(..a as usize) {
                Some(bytes) => {
                    *self.record.borrow_mut() = bytes.to_vec();
                    command_return::success()
                }
                None => command_return::failure_u32(ErrorCode::Invalid, 21),
            },
            command::LOAD_APP_RECORD if self.telemetry => refuse(),
            command::LOAD_APP_RECORD => {
                let record = self.record.borrow();
                match self.output.borrow_mut().get_mut(..record.len()) {
                    Some(out) => {
                        out.copy_from_slice(&record);
                        command_return::success_u32(record.len() as u32)
                    }
                    None => command_return::failure_u32(ErrorCode::Invalid, 21),
                }
            }
            command::PATIENT_BOLUS_STATE => command_return::success_2_u32(1_200_000, 3),
            command::PENDING_EVENTS if !self.telemetry => refuse(),
            command::PENDING_EVENTS => command_return::success_u32(7),
            _ => command_return::failure_u32(ErrorCode::NoSupport, 25),
        }
    }
}

#[test]
fn absent_driver_is_nodevice() {
    let _kernel = fake::Kernel::new();
    assert_eq!(Api::exists(), Err(Refused::from(ErrorCode::NoDevice)));
    assert_eq!(Api::status().map_err(|e| e.code), Err(ErrorCode::NoDevice));
}

#[test]
fn status_unpacks_state_and_top_alarm() {
    let kernel = fake::Kernel::new();
    kernel.add_driver(&FakeInfusion::new(false));
    assert_eq!(Api::exists(), Ok(()));
    assert_eq!(
        Api::status(),
        Ok(Status {
            state: 1,
            top_alarm: 3,
            reservoir_nl: 20_000_000,
            delivered_24h_nl: 4_000,
        })
    );
    assert_eq!(Api::patient_bolus_state(), Ok((1_200_000, 3)));
    assert_eq!(Api::check_in(), Ok(60_000));
}

#[test]
fn refusals_carry_the_capsules_reason() {
    let kernel = fake::Kernel::new();
    let driver = FakeInfusion::new(false);
    kernel.add_driver(&driver);
    assert_eq!(Api::set_basal(25_000), Ok(()));
    assert_eq!(driver.basal.get(), 25_000);
    assert_eq!(
        Api::install_prescription(b"signed"),
        Err(Refused {
            code: ErrorCode::NoDevice,
            reason: 6
        })
    );
    assert_eq!(
        Api::pending_events(),
        Err(Refused {
            code: ErrorCode::NoDevice,
            reason: 6
        })
    );
    assert_eq!(
        Api::raw_command(99, 0, 0),
        Err(Refused {
            code: ErrorCode::NoSupport,
            reason: 25
        })
    );
    assert_eq!(Api::raw_command(command::STATUS, 0, 0), Ok(()));
}

#[test]
fn prescription_goes_through_the_read_only_allow_and_comes_back() {
    let kernel = fake::Kernel::new();
    let driver = FakeInfusion::new(true);
    kernel.add_driver(&driver);
    let mut buf = [0u8; 32];
    assert_eq!(
        Api::read_prescription(&mut buf).map_err(|e| e.reason),
        Err(11)
    );
    assert_eq!(Api::install_prescription(b"signed rx bytes"), Ok(()));
    assert_eq!(driver.installed.borrow().as_slice(), b"signed rx bytes");
    // The allow is withdrawn after the call.
    assert_eq!(driver.input.borrow().len(), 0);
    assert_eq!(Api::read_prescription(&mut buf), Ok(15));
    assert_eq!(&buf[..15], b"signed rx bytes");
}

#[test]
fn app_record_goes_out_through_the_read_only_allow_and_comes_back() {
    let kernel = fake::Kernel::new();
    let driver = FakeInfusion::new(false);
    kernel.add_driver(&driver);
    let mut buf = [0u8; 16];
    assert_eq!(Api::load_app_record(&mut buf), Ok(0));
    assert_eq!(Api::save_app_record(b"\x01record"), Ok(()));
    assert_eq!(driver.record.borrow().as_slice(), b"\x01record");
    assert_eq!(driver.input.borrow().len(), 0);
    assert_eq!(Api::load_app_record(&mut buf), Ok(7));
    assert_eq!(&buf[..7], b"\x01record");
    // A buffer too small for the record: the capsule's InvalidArgument.
    assert_eq!(
        Api::load_app_record(&mut [0u8; 3]).map_err(|e| e.reason),
        Err(21)
    );
}

#[test]
fn app_record_is_refused_to_the_telemetry_role() {
    let kernel = fake::Kernel::new();
    let driver = FakeInfusion::new(true);
    kernel.add_driver(&driver);
    let refused = Api::save_app_record(b"x").unwrap_err();
    assert_eq!(refused.reason, NODEVICE_NOT_PERMITTED.1 as u16);
    assert!(driver.record.borrow().is_empty());
    assert!(Api::load_app_record(&mut [0u8; 8]).is_err());
}

#[test]
fn drain_fills_the_read_write_allow() {
    let kernel = fake::Kernel::new();
    kernel.add_driver(&FakeInfusion::new(true));
    let mut buf = [0xAAu8; 16];
    assert_eq!(Api::drain_events(&mut buf), Ok((7, 1)));
    assert_eq!(&buf[..7], &[0, 5, 1, 2, 3, 4, 0]);
    let mut small = [0u8; 3];
    assert_eq!(Api::drain_events(&mut small), Ok((0, 0)));
    assert_eq!(Api::pending_events(), Ok(7));
}

#[test]
fn set_clock_splits_64_bits() {
    let kernel = fake::Kernel::new();
    let driver = FakeInfusion::new(true);
    kernel.add_driver(&driver);
    assert_eq!(Api::set_clock(1_735_689_600_123), Ok(()));
    assert_eq!(driver.clock.get(), 1_735_689_600_123);
}

#[test]
fn upcalls_arrive_as_events() {
    let kernel = fake::Kernel::new();
    kernel.add_driver(&FakeInfusion::new(false));
    let seen: RefCell<Vec<Event>> = RefCell::new(Vec::new());
    let listener = InfusionListener(|event| seen.borrow_mut().push(event));
    share::scope(|handle| {
        Api::subscribe_all(&listener, handle).unwrap();
        assert_eq!(Api::bolus(BolusKind::Patient, 50_000, 60_000), Ok(()));
        assert_eq!(
            Api::bolus(BolusKind::Patient, 500_000, 60_000),
            Err(Refused {
                code: ErrorCode::Invalid,
                reason: 13
            })
        );
        while fake::Syscalls::yield_no_wait() == libtock_platform::YieldNoWaitReturn::Upcall {}
    });
    assert_eq!(
        seen.borrow().as_slice(),
        &[
            Event::BolusVerdict {
                kind: 2,
                error: 0,
                volume_nl: 50_000
            },
            Event::DeliveryDone {
                kind: 2,
                outcome: 0,
                volume_nl: 50_000
            },
            Event::BolusVerdict {
                kind: 2,
                error: 13,
                volume_nl: 500_000
            },
        ]
    );
}

#[test]
fn events_available_reaches_the_listener() {
    let kernel = fake::Kernel::new();
    kernel.add_driver(&FakeInfusion::new(true));
    let count = Cell::new(None);
    let listener = InfusionListener(|event| {
        if let Event::EventsAvailable { count: n } = event {
            count.set(Some(n));
        }
    });
    share::scope(|handle| {
        Api::subscribe_all(&listener, handle).unwrap();
        Api::install_prescription(b"rx").unwrap();
        fake::Syscalls::yield_wait();
    });
    assert_eq!(count.get(), Some(1));
}

/// An alarm driver with a settable counter (libtock_unittest's fake alarm
/// has no TIME or STOP command).
struct FakeAlarm {
    now: Cell<u32>,
    armed: Cell<Option<u32>>,
    share_ref: DriverShareRef,
}

impl fake::SyscallDriver for FakeAlarm {
    fn info(&self) -> DriverInfo {
        DriverInfo::new(rt::ALARM_DRIVER_NUM).upcall_count(1)
    }
    fn register(&self, share_ref: DriverShareRef) {
        self.share_ref.replace(share_ref);
    }
    fn command(&self, num: u32, a: u32, _b: u32) -> libtock_platform::CommandReturn {
        match num {
            1 => command_return::success_u32(32_768),
            2 => command_return::success_u32(self.now.get()),
            3 => {
                self.armed.set(None);
                command_return::success()
            }
            5 => {
                self.armed.set(Some(a));
                let _ = self
                    .share_ref
                    .schedule_upcall(0, (self.now.get().wrapping_add(a), 0, 0));
                command_return::success_u32(self.now.get().wrapping_add(a))
            }
            _ => command_return::failure(ErrorCode::NoSupport),
        }
    }
}

#[test]
fn clock_extends_wrapping_ticks_and_timer_sets_its_flag() {
    let kernel = fake::Kernel::new();
    let alarm = Rc::new(FakeAlarm {
        now: Cell::new(u32::MAX - 32_767),
        armed: Cell::new(None),
        share_ref: Default::default(),
    });
    kernel.add_driver(&alarm);
    let clock = rt::Clock::<fake::Syscalls>::new().unwrap();
    assert_eq!(clock.now_ms(), 0);
    // One second later the 32-bit counter has wrapped.
    alarm.now.set(0);
    assert_eq!(clock.now_ms(), 1000);
    for second in 2..=1000u64 {
        alarm.now.set(alarm.now.get().wrapping_add(32_768));
        assert_eq!(clock.now_ms(), second * 1000);
    }
    assert_eq!(clock.ticks_for(1), 33);
    assert_eq!(clock.ticks_for(u64::MAX / 2), u32::MAX);

    let flag = rt::TimerFlag::default();
    share::scope(|handle| {
        rt::WakeTimer::<fake::Syscalls>::subscribe(&flag, handle).unwrap();
        rt::WakeTimer::<fake::Syscalls>::arm(clock.ticks_for(250)).unwrap();
        assert_eq!(alarm.armed.get(), Some(8192));
        assert!(!flag.take());
        fake::Syscalls::yield_wait();
        assert!(flag.take());
        assert!(!flag.take());
    });
}

#[test]
fn full_status_and_denial_report() {
    struct Status {
        denial: Cell<Option<(u32, u32)>>,
        output: RefCell<RwAllowBuffer>,
    }
    impl fake::SyscallDriver for Status {
        fn info(&self) -> DriverInfo {
            DriverInfo::new(DRIVER_NUM).upcall_count(6)
        }
        fn allow_readwrite(
            &self,
            _num: u32,
            buffer: RwAllowBuffer,
        ) -> Result<RwAllowBuffer, (RwAllowBuffer, ErrorCode)> {
            Ok(self.output.replace(buffer))
        }
        fn command(&self, num: u32, a: u32, b: u32) -> libtock_platform::CommandReturn {
            match num {
                command::FULL_STATUS => {
                    let mut out = self.output.borrow_mut();
                    if out.len() < 3 {
                        return command_return::failure_u32(ErrorCode::Invalid, 21);
                    }
                    out[..3].copy_from_slice(&[1, 2, 3]);
                    command_return::success_u32(3)
                }
                command::REPORT_PATIENT_DENIAL => {
                    self.denial.set(Some((a, b)));
                    command_return::success()
                }
                _ => command_return::failure(ErrorCode::NoSupport),
            }
        }
    }
    let kernel = fake::Kernel::new();
    let driver = Rc::new(Status {
        denial: Cell::new(None),
        output: Default::default(),
    });
    kernel.add_driver(&driver);
    let mut buf = [0u8; 8];
    assert_eq!(Api::full_status(&mut buf), Ok(3));
    assert_eq!(&buf[..3], &[1, 2, 3]);
    assert_eq!(
        Api::full_status(&mut buf[..2]),
        Err(Refused {
            code: ErrorCode::Invalid,
            reason: 21
        })
    );
    assert_eq!(Api::report_patient_denial(16, 3_600_000), Ok(()));
    assert_eq!(driver.denial.get(), Some((16, 3_600_000)));
}

/// A fake relay (commands 22–25): one entry, one result, upcalls 4 and 5.
struct FakeRelay {
    input: RefCell<RoAllowBuffer>,
    output: RefCell<RwAllowBuffer>,
    /// (ticket, kind, payload) posted and not yet taken.
    entry: RefCell<Option<(u32, u32, Vec<u8>)>>,
    /// (ticket, verdict) answered and not yet read.
    result: Cell<Option<(u32, u32)>>,
    next_ticket: Cell<u32>,
    share_ref: DriverShareRef,
}

impl fake::SyscallDriver for FakeRelay {
    fn info(&self) -> DriverInfo {
        DriverInfo::new(DRIVER_NUM).upcall_count(6)
    }
    fn register(&self, share_ref: DriverShareRef) {
        self.share_ref.replace(share_ref);
    }
    fn allow_readonly(
        &self,
        _num: u32,
        buffer: RoAllowBuffer,
    ) -> Result<RoAllowBuffer, (RoAllowBuffer, ErrorCode)> {
        Ok(self.input.replace(buffer))
    }
    fn allow_readwrite(
        &self,
        _num: u32,
        buffer: RwAllowBuffer,
    ) -> Result<RwAllowBuffer, (RwAllowBuffer, ErrorCode)> {
        Ok(self.output.replace(buffer))
    }
    fn command(&self, num: u32, a: u32, b: u32) -> libtock_platform::CommandReturn {
        match num {
            command::AUTHENTICATED_COMMAND => {
                let input = self.input.borrow();
                match input.get(..a as usize) {
                    // A signed bolus request (0x0203) posts; anything else
                    // is carried out (Suspend, 0x0206).
                    Some([0x03, ..]) => {
                        let ticket = self.next_ticket.get();
                        self.next_ticket.set(ticket + 1);
                        command_return::success_2_u32(0x0203, ticket)
                    }
                    Some([_, ..]) => command_return::success_2_u32(0x0206, 0),
                    // Unauthenticated (27) is INVAL.
                    _ => command_return::failure_u32(ErrorCode::Invalid, 27),
                }
            }
            command::RELAY_POST => {
                let input = self.input.borrow();
                let Some(payload) = input.get(..b as usize) else {
                    // BadPayload (21) is INVAL.
                    return command_return::failure_u32(ErrorCode::Invalid, 21);
                };
                let ticket = self.next_ticket.get();
                self.next_ticket.set(ticket + 1);
                *self.entry.borrow_mut() = Some((ticket, a, payload.to_vec()));
                let _ = self.share_ref.schedule_upcall(4, (0, 0, 0));
                command_return::success_u32(ticket)
            }
            command::RELAY_TAKE => {
                let mut entry = self.entry.borrow_mut();
                let Some((ticket, kind, payload)) = entry.as_ref() else {
                    // NotReady (4) is OFF.
                    return command_return::failure_u32(ErrorCode::Off, 4);
                };
                let mut output = self.output.borrow_mut();
                if output.len() < payload.len() {
                    return command_return::failure_u32(ErrorCode::Invalid, 1);
                }
                output[..payload.len()].copy_from_slice(payload);
                let ret =
                    command_return::success_2_u32(*ticket, kind | (payload.len() as u32) << 16);
                *entry = None;
                ret
            }
            command::RELAY_ANSWER => {
                self.result.set(Some((a, b)));
                let _ = self.share_ref.schedule_upcall(5, (0, 0, 0));
                command_return::success()
            }
            command::RELAY_RESULT => match self.result.take() {
                Some((ticket, verdict)) => command_return::success_2_u32(ticket, verdict),
                None => command_return::failure_u32(ErrorCode::Off, 4),
            },
            _ => command_return::failure(ErrorCode::NoSupport),
        }
    }
}

#[test]
fn relay_round_trip_through_the_allows_and_upcalls_4_and_5() {
    let kernel = fake::Kernel::new();
    let driver = Rc::new(FakeRelay {
        input: Default::default(),
        output: Default::default(),
        entry: Default::default(),
        result: Cell::new(None),
        next_ticket: Cell::new(1),
        share_ref: Default::default(),
    });
    kernel.add_driver(&driver);
    let seen: RefCell<Vec<Event>> = RefCell::new(Vec::new());
    let listener = InfusionListener(|event| seen.borrow_mut().push(event));
    share::scope(|handle| {
        Api::subscribe_all(&listener, handle).unwrap();
        // Signed commands: bytes in the read-only allow, (kind, ticket) out,
        // the capsule's typed reason on refusal.
        assert_eq!(Api::authenticated_command(&[0x06, 1, 2]), Ok((0x0206, 0)));
        assert_eq!(Api::authenticated_command(&[0x03, 1, 2]), Ok((0x0203, 1)));
        assert_eq!(
            Api::authenticated_command(&[]).map_err(|e| e.reason),
            Err(27)
        );
        assert_eq!(driver.input.borrow().len(), 0);
        driver.next_ticket.set(1);
        assert_eq!(Api::relay_result().map_err(|e| e.reason), Err(4));
        let mut buf = [0u8; 16];
        assert_eq!(Api::relay_take(&mut buf).map_err(|e| e.reason), Err(4));
        // ClinicianBolus (kind 0x0203) with a 4-byte payload.
        assert_eq!(Api::relay_post(0x0203, &[0xE8, 0x07, 0x80, 0x01]), Ok(1));
        // The allow is withdrawn after the call.
        assert_eq!(driver.input.borrow().len(), 0);
        let mut small = [0u8; 2];
        assert_eq!(
            Api::relay_take(&mut small),
            Err(Refused {
                code: ErrorCode::Invalid,
                reason: 1
            })
        );
        assert_eq!(
            Api::relay_take(&mut buf),
            Ok(RelayItem {
                ticket: 1,
                kind: 0x0203,
                len: 4
            })
        );
        assert_eq!(&buf[..4], &[0xE8, 0x07, 0x80, 0x01]);
        assert_eq!(Api::relay_answer(1, 0), Ok(()));
        assert_eq!(Api::relay_result(), Ok((1, 0)));
        // A notice with an empty payload (InstallPrescription), answered with a refusal here (the fake does not tell requests from notices).
        assert_eq!(Api::relay_post(0x0202, &[]), Ok(2));
        assert_eq!(
            Api::relay_take(&mut buf),
            Ok(RelayItem {
                ticket: 2,
                kind: 0x0202,
                len: 0
            })
        );
        assert_eq!(Api::relay_answer(2, 16), Ok(()));
        assert_eq!(Api::relay_result(), Ok((2, 16)));
        while fake::Syscalls::yield_no_wait() == libtock_platform::YieldNoWaitReturn::Upcall {}
    });
    assert_eq!(
        seen.borrow().as_slice(),
        &[
            Event::RelayPosted,
            Event::RelayAnswered,
            Event::RelayPosted,
            Event::RelayAnswered
        ]
    );
}
