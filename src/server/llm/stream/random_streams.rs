//! Random provider-like byte streams and random ways to cut them into chunks, shared by
//! the framing's property test and the `framing` benchmark (which includes this file).

use rand::Rng;

/// What random streams are made of: SSE fields and comments, every separator, JSON,
/// multi-byte UTF-8 and a byte-order mark.
const PIECES: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"event: ",
    b"id: 7",
    b"retry: 5",
    b":",
    b" ",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"{\"a\":1}",
    b"x",
    "\u{e9}".as_bytes(),
    "\u{1F600}".as_bytes(),
    "\u{feff}".as_bytes(),
];

/// A random stream of up to `max_pieces` pieces; about one piece in 32 is a random byte,
/// so invalid UTF-8 turns up too.
pub fn random_stream(rng: &mut impl Rng, max_pieces: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..rng.gen_range(0..=max_pieces) {
        if rng.gen_ratio(1, 32) {
            bytes.push(rng.gen());
        } else {
            bytes.extend_from_slice(PIECES[rng.gen_range(0..PIECES.len())]);
        }
    }
    bytes
}

/// `bytes` cut at random places into chunks, empty chunks included.
pub fn random_chunks<'a>(rng: &mut impl Rng, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = (0..rng.gen_range(0..=8))
        .map(|_| rng.gen_range(0..=bytes.len()))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}
