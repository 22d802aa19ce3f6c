// q1.wgsl — reading Q1_0 weights in their file layout from `W: array<u32>` (declared by the kernel).
// A block is 18 bytes: an f16 scale d, then 128 sign bits (bit j of byte j/8: +d if set, -d if
// clear). Blocks start at even byte offsets, so a 32-bit word may straddle two array words.

// 32 bits at byte offset a (even) of W. W's size is padded to 4 bytes, so W[i + 1] exists.
fn w32(a: u32) -> u32 {
  let i = a >> 2u;
  if ((a & 2u) == 0u) { return W[i]; }
  return (W[i] >> 16u) | (W[i + 1u] << 16u);
}

// The f16 scale at byte offset a (even).
fn wscale(a: u32) -> f32 {
  let v = unpack2x16float(W[a >> 2u]);
  return select(v.x, v.y, (a & 2u) != 0u);
}

// Reads one word of every 32-weight word a lane of gateup.wgsl will take from rows at byte
// offsets a (nw words a row, every TPR-th word from `lane`), so that those weights are on their
// way from memory while the kernel stages its input; the result only keeps the loads alive.
fn w_touch(a: vec4<u32>, nw: u32, lane: u32) -> u32 {
  var t = 0u;
  for (var it = 0u; it < (nw + TPR - 1u) / TPR; it++) {
    let w = min(lane + it * TPR, nw - 1u);
    let wo = (w >> 2u) * 18u + 2u + (w & 3u) * 4u;
    t ^= W[(a.x + wo) >> 2u] ^ W[(a.y + wo) >> 2u] ^ W[(a.z + wo) >> 2u] ^ W[(a.w + wo) >> 2u];
  }
  return t;
}

// Shapes fixed when the pipeline is created, where the host knows them (the decode products):
// then a kernel's first weight loads wait for no uniform load (each dependent round trip counts
// at batch 1). 0xffffffff (the default): the field comes from P.
override F_ROWS: u32 = 0xffffffffu;
override F_COLS: u32 = 0xffffffffu;
override F_RB: u32 = 0xffffffffu;    // row_bytes
override F_WOFF: u32 = 0xffffffffu;  // w_off
override F_OUT: u32 = 0xffffffffu;   // out_off + row0

fn p_rows() -> u32 { return select(P.rows, F_ROWS, F_ROWS != 0xffffffffu); }
fn p_cols() -> u32 { return select(P.cols, F_COLS, F_COLS != 0xffffffffu); }
fn p_rb() -> u32 { return select(P.row_bytes, F_RB, F_RB != 0xffffffffu); }
fn p_woff() -> u32 { return select(P.w_off, F_WOFF, F_WOFF != 0xffffffffu); }
fn p_out() -> u32 { return select(P.out_off + P.row0, F_OUT, F_OUT != 0xffffffffu); }

// Byte offsets of rows r0 .. r0 + 3 of the matrix, clamped to its last row.
fn rows4(r0: u32) -> vec4<u32> {
  let last = p_rows() - 1u;
  return vec4<u32>(min(r0, last), min(r0 + 1u, last), min(r0 + 2u, last), min(r0 + 3u, last)) * p_rb() + p_woff();
}
