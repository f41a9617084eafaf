//! The capsule core over the flash model, cut off at every flash operation
//! of a delivery scenario (torn programs and erases included): after the
//! reboot no motor step is forgotten and at most one reservation batch is
//! counted that did not happen (SR-PER-006).

use infusion_core::{InfusionCore, StoredRecords, RESERVATION_STEPS};
use pumpctl::bench::basal_only_prescription;
use pumpctl::board::{self, DOSING_APP, NL_PER_STEP, TELEMETRY_APP};
use pumpctl::flashstore::PumpFlash;
use pumpctl::sim::SimPlatform;

const HOUR_MS: u64 = 3_600_000;
const RATE_NL_PER_H: u32 = 40_000;
const RESERVOIR_NL: u32 = 10_000_000;

type Core = InfusionCore<SimPlatform>;

/// Six hours of basal with a drain every ten minutes; with `cut`, the
/// state region's flash tears its `cut`-th operation and the run stops there.
/// Returns the core and the last event sequence drained.
fn scenario(cut: Option<u64>) -> (Core, u32) {
    let mut platform = SimPlatform::default();
    platform.flash = Some(PumpFlash::new(7));
    let mut core = InfusionCore::new(board::board_config(&[]), platform);
    core.restore_records(&StoredRecords::BLANK, 0);
    let signed = pumpctl::sign::sign(
        &basal_only_prescription(RATE_NL_PER_H),
        &board::simulator_test_key(),
    )
    .unwrap();
    core.install_prescription(TELEMETRY_APP, &signed, 0)
        .unwrap();
    core.refill(TELEMETRY_APP, 0, RESERVOIR_NL, 1, 0).unwrap();
    core.set_basal(DOSING_APP, RATE_NL_PER_H, 0).unwrap();
    if let (Some(ops), Some(flash)) = (cut, core.platform_mut().flash.as_mut()) {
        flash.cut_power_after(ops);
    }
    let dead = |core: &Core| core.platform().flash.as_ref().unwrap().power_lost();
    let mut last_sequence = 0;
    let mut next_drain = 0;
    let mut buf = vec![0u8; 16 * 1024];
    while let Some(t) = core.next_wakeup().filter(|t| *t <= 6 * HOUR_MS) {
        if dead(&core) {
            break;
        }
        if t >= next_drain {
            let (len, _) = core.drain_events(TELEMETRY_APP, &mut buf, t).unwrap();
            pump_protocol::StreamDecoder::new().feed(&buf[..len], |item| {
                if let pump_protocol::StreamItem::Frame { frame, .. } = item {
                    last_sequence = frame.sequence();
                }
            });
            next_drain = t + 10 * 60_000;
        }
        let _ = core.check_in(DOSING_APP, t);
        core.platform_mut().now_ms = t;
        core.on_timer(t);
        if core.platform_mut().take_pulse() {
            core.on_encoder_pulse(t);
        }
    }
    (core, last_sequence)
}

#[test]
fn sr_per_006_a_cut_at_every_flash_operation_forgets_no_step() {
    let (whole, _) = scenario(None);
    let flash = whole.platform().flash.as_ref().unwrap();
    let total_ops = flash.state_ops();
    assert!(
        total_ops > 100,
        "{total_ops} flash operations: too few to be a test"
    );
    let s = u64::from(NL_PER_STEP);
    for cut in 0..total_ops {
        let (mut core, last_sequence) = scenario(Some(cut));
        let made = core.platform().commanded_steps;
        let reboot_at = core.platform().now_ms + 60_000;
        let (flash, read_back) = core.platform_mut().flash.take().unwrap().reboot();
        let mut platform = SimPlatform::default();
        platform.flash = Some(flash);
        let mut restored = InfusionCore::new(board::board_config(&[]), platform);
        restored.restore_records(&read_back.stored(), reboot_at);

        let accounted = restored.steps_accounted();
        assert!(
            accounted >= made,
            "cut {cut}: accounted {accounted} < made {made}"
        );
        assert!(
            accounted - made <= RESERVATION_STEPS,
            "cut {cut}: {accounted} accounted for {made} made"
        );
        let reservoir_true = u64::from(RESERVOIR_NL) - made * s;
        let reservoir = u64::from(restored.reservoir_nl());
        assert!(
            reservoir <= reservoir_true && reservoir_true - reservoir <= RESERVATION_STEPS * s,
            "cut {cut}: reservoir {reservoir}, truly {reservoir_true}"
        );
        assert!(
            restored.delivered_24h_nl(reboot_at) >= made * s,
            "cut {cut}: the 24 h window lost steps"
        );
        // Event numbers drained before the cut are never reused.
        let mut buf = vec![0u8; 64 * 1024];
        let (len, _) = restored
            .drain_events(TELEMETRY_APP, &mut buf, reboot_at)
            .unwrap();
        pump_protocol::StreamDecoder::new().feed(&buf[..len], |item| {
            if let pump_protocol::StreamItem::Frame { frame, .. } = item {
                assert!(
                    frame.sequence() > last_sequence,
                    "cut {cut}: sequence {} reused",
                    frame.sequence()
                );
            }
        });
    }
}
