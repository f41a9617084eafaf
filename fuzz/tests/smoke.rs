//! Every fuzz target without libFuzzer, on stable: the committed seed
//! corpus (`corpus/<target>/`), the seeds built here, and
//! `FUZZ_SMOKE_INPUTS` (default 48) pseudo-random inputs per target from a
//! fixed seed. `.ci/run` runs this; campaigns are in README.md.
//!
//! `FUZZ_WRITE_SEEDS=1 cargo test --no-default-features` rewrites the
//! built seeds into `corpus/`.

use std::path::{Path, PathBuf};

use pump_protocol::{encode_stream_frame_vec, Frame, GetStatus, Message, ReadLog, SetClock};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn frame(sequence: u32, message: Message) -> Vec<u8> {
    encode_stream_frame_vec(&Frame {
        sequence,
        flags: 0,
        message,
    })
    .expect("encodes")
}

/// Seeds that reach past the first checks of each decoder.
fn built_seeds(target: &str) -> Vec<Vec<u8>> {
    let example = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples")
                .join(name),
        )
        .expect("example prescription")
    };
    let signed_rx = pump_fuzz::support::signed_v2(2, &pump_fuzz::support::paired(4, 0));
    match target {
        "stream" | "telemetry_link" => {
            let mut link = frame(1, Message::GetStatus(GetStatus {}));
            link.extend(frame(
                2,
                Message::ReadLog(ReadLog {
                    from_sequence: 0,
                    max_frames: 8,
                }),
            ));
            let signed = pump_test_support::authenticated(
                &Message::SetClock(SetClock { utc_time_ms: 1 }),
                9_000,
            );
            vec![
                [vec![7], link.clone()].concat(),
                [vec![1], frame(3, signed)].concat(),
                link,
            ]
        }
        "prescription" => {
            let body_len = signed_rx.len() - 64;
            vec![
                [vec![0], signed_rx.clone()].concat(),
                [vec![1], vec![9, 0, 40]].concat(),
                [vec![2], signed_rx[..body_len].to_vec()].concat(),
            ]
        }
        "refill" => vec![
            postcard::to_allocvec(&pump_protocol::Refill {
                withdrawn_volume_nl: 0,
                added_volume_nl: 5_000_000,
                concentration_ug_per_ml: pump_fuzz::support::CONCENTRATION_UG_PER_ML,
            })
            .expect("encodes"),
            postcard::to_allocvec(&pump_protocol::Refill {
                withdrawn_volume_nl: 99_000_000,
                added_volume_nl: 1,
                concentration_ug_per_ml: pump_fuzz::support::CONCENTRATION_UG_PER_ML,
            })
            .expect("encodes"),
        ],
        "relay" => vec![
            vec![1, 0, 0, 0, 4, 50, 128, 141, 91],
            vec![0, 8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 23],
        ],
        "signed_command" => vec![vec![1, 0x06, 0x02, 4, 0, 1], vec![2, 3, 9], vec![3, 0, 10]],
        "dosing_record" => {
            let mut buf = [0u8; dosing_core::SAVED_RECORD_MAX_LEN];
            let state = dosing_core::SavedState::new(dosing_core::CatheterContents::Unknown);
            let n = dosing_core::encode_record(&state, 1_000, &mut buf).expect("encodes");
            vec![buf[..n].to_vec()]
        }
        "saved_state" => {
            let core = pump_fuzz::support::running(0);
            let image = core.platform().saved.clone().expect("saved");
            vec![[vec![0], image].concat(), vec![1, 10, 0, 1], vec![2, 1, 1]]
        }
        "rx_check" => vec![
            example("baclofen.toml"),
            example("morphine.toml"),
            example("baclofen-flex.toml"),
        ],
        "oracle" => {
            let mut s = vec![1u8];
            for kind in [14u8, 0, 20, 0, 34, 59, 0, 40, 0] {
                let mut a = [0u8; pump_fuzz::oracle_model::ACTION_BYTES];
                a[0] = kind;
                a[1] = 1;
                a[4] = 0x30;
                a[5] = 0x20;
                s.extend(a);
            }
            vec![s]
        }
        _ => Vec::new(),
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let Ok(dir) = std::fs::read_dir(corpus_dir(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// xorshift64*: the same inputs on every run.
fn random_inputs(target: &str, n: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ target.len() as u64;
    for b in target.bytes() {
        x = x.rotate_left(5) ^ u64::from(b);
    }
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..n)
        .map(|_| {
            let len = (next() % 600) as usize;
            (0..len).map(|_| (next() >> 32) as u8).collect()
        })
        .collect()
}

#[test]
fn every_target_runs_its_corpus_and_random_inputs() {
    let n = std::env::var("FUZZ_SMOKE_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let write = std::env::var_os("FUZZ_WRITE_SEEDS").is_some();
    let mut total = 0;
    for (name, target) in pump_fuzz::TARGETS {
        let seeds = built_seeds(name);
        assert!(!seeds.is_empty(), "{name} has no seeds");
        if write {
            let dir = corpus_dir(name);
            std::fs::create_dir_all(&dir).expect("corpus dir");
            for (i, s) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), s).expect("write seed");
            }
        }
        let started = std::time::Instant::now();
        let inputs: Vec<Vec<u8>> = seeds
            .into_iter()
            .chain(corpus(name))
            .chain(random_inputs(name, n))
            .collect();
        for input in &inputs {
            target(input);
        }
        total += inputs.len();
        println!("{name}: {} inputs in {:?}", inputs.len(), started.elapsed());
    }
    assert!(total >= pump_fuzz::TARGETS.len() * n);
}

#[test]
fn every_target_has_a_committed_seed_corpus_and_a_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in pump_fuzz::TARGETS {
        assert!(
            !corpus(name).is_empty(),
            "fuzz/corpus/{name}/ is empty: run FUZZ_WRITE_SEEDS=1 cargo test --no-default-features"
        );
        assert!(root
            .join("fuzz_targets")
            .join(format!("{name}.rs"))
            .exists());
    }
}
