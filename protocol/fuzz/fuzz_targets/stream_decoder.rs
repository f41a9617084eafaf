//! Arbitrary bytes, fed in arbitrary chunk sizes, must never panic the
//! stream decoder, and chunking must not change what it yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pump_protocol::{decode_frame, StreamDecoder, StreamItem};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);

    let mut whole = Vec::new();
    let mut decoder = StreamDecoder::new();
    decoder.feed(bytes, |item| whole.push(item));
    whole.extend(decoder.finish());

    let mut chunked = Vec::new();
    let mut decoder = StreamDecoder::new();
    for part in bytes.chunks(chunk) {
        decoder.feed(part, |item| chunked.push(item));
    }
    chunked.extend(decoder.finish());

    let mut pushed = Vec::new();
    let mut decoder = StreamDecoder::new();
    for &b in bytes {
        pushed.extend(decoder.push(b));
    }
    pushed.extend(decoder.finish());

    assert_eq!(whole, chunked);
    assert_eq!(whole, pushed);
    for item in &whole {
        if let StreamItem::Frame { frame, .. } = item {
            // A decoded frame's message always has a kind code.
            let _ = frame.message.kind_code();
        }
    }
    // The frame decoder alone must not panic either.
    let _ = decode_frame(bytes);
});
