// red_wg.wgsl — reductions over a 256-invocation workgroup through workgroup memory: the variant
// for devices without (usable) subgroups. red_sg.wgsl has the same functions. Every function
// must be called by all invocations in uniform control flow.

override TPR: u32 = 8u;   // invocations that share one matrix row (a power of two <= 256)

var<workgroup> red_buf: array<f32, 256>;
var<workgroup> red_buf4: array<vec4<f32>, 256>;

// Sum of v over the TPR consecutive invocations of tid's row group, returned to each of them.
fn lanes_sum(v: f32, tid: u32) -> f32 {
  red_buf[tid] = v;
  workgroupBarrier();
  var s = TPR / 2u;
  loop {
    if (s == 0u) { break; }
    if ((tid % TPR) < s) { red_buf[tid] += red_buf[tid + s]; }
    workgroupBarrier();
    s = s >> 1u;
  }
  let r = red_buf[tid - tid % TPR];
  workgroupBarrier();
  return r;
}

// The largest v over the TPR consecutive invocations of tid's row group.
fn lanes_max(v: f32, tid: u32) -> f32 {
  red_buf[tid] = v;
  workgroupBarrier();
  var s = TPR / 2u;
  loop {
    if (s == 0u) { break; }
    if ((tid % TPR) < s) { red_buf[tid] = max(red_buf[tid], red_buf[tid + s]); }
    workgroupBarrier();
    s = s >> 1u;
  }
  let r = red_buf[tid - tid % TPR];
  workgroupBarrier();
  return r;
}

// lanes_sum of four values at once.
fn lanes_sum4(v: vec4<f32>, tid: u32) -> vec4<f32> {
  red_buf4[tid] = v;
  workgroupBarrier();
  var s = TPR / 2u;
  loop {
    if (s == 0u) { break; }
    if ((tid % TPR) < s) { red_buf4[tid] += red_buf4[tid + s]; }
    workgroupBarrier();
    s = s >> 1u;
  }
  let r = red_buf4[tid - tid % TPR];
  workgroupBarrier();
  return r;
}

fn wg_sum(v: f32, tid: u32) -> f32 {
  red_buf[tid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_buf[tid] += red_buf[tid + s]; }
    workgroupBarrier();
  }
  let r = red_buf[0];
  workgroupBarrier();
  return r;
}

// Two sums at once (one reduction instead of two).
fn wg_sum2(v: vec2<f32>, tid: u32) -> vec2<f32> {
  red_buf4[tid] = vec4<f32>(v, 0.0, 0.0);
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_buf4[tid] += red_buf4[tid + s]; }
    workgroupBarrier();
  }
  let r = red_buf4[0].xy;
  workgroupBarrier();
  return r;
}

fn wg_max(v: f32, tid: u32) -> f32 {
  red_buf[tid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_buf[tid] = max(red_buf[tid], red_buf[tid + s]); }
    workgroupBarrier();
  }
  let r = red_buf[0];
  workgroupBarrier();
  return r;
}
