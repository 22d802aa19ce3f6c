// attn_io.wgsl — attn_one.wgsl's bindings for kernel attn_one (the decode attention over a cache
// that rope.wgsl has written, and its merge): the cache read only, no RoPE table, no cache write.

@group(0) @binding(0) var<storage, read> QKV: array<f32>;
@group(0) @binding(1) var<storage, read> KV: array<u32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@group(0) @binding(3) var<storage, read_write> PART: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;
@group(0) @binding(5) var<uniform> S: Step;

var<private> RT: array<vec2<f32>, 1>;  // (ROPE is off with these bindings)
fn kv_put(i: u32, v: u32) {}
