//! Peak heap memory of planning: counts the bytes the allocator holds while the
//! planner turns the benchmark input (JSON text) into the plan (JSON text), and
//! prints the peak beside the input size; then the CPU time (minimum of RUNS,
//! default 5) of the whole call and of its phases: parse, plan, write.
//! `cargo run -q --release --example plan_memory -- 100000 [RUNS]`
#![allow(unsafe_code)] // a counting GlobalAlloc must be an unsafe impl

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[path = "../benches/workload.rs"]
mod workload;

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only
// updates two counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: ptr was allocated by System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let now =
                CURRENT.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// CPU time of this thread so far (Linux `/proc/thread-self/schedstat`, in ns),
/// falling back to wall-clock time elsewhere: the machine is shared, so CPU time
/// is the steadier measure.
fn cpu_now() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| EPOCH.elapsed())
}

static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut number = |default: usize| {
        args.next()
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or(default)
    };
    let n = number(100_000);
    let runs = number(5).max(1);
    let text = workload::input(n).to_string();

    // Peak heap of one call, from a quiet heap.
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = consul_lambda_sync::ffi::call("plan", &text);
    let peak = PEAK.load(Relaxed) - base;
    let out_len = out.as_ref().map_or(0, String::len);
    let ok = out.is_ok();
    let out_text = out.unwrap_or_default();

    // CPU time, minimum of `runs`: the whole call (what the bindings run), then
    // its phases apart: parse the input, plan (counts only), plan and write the
    // JSON; and, for comparison, building the owned `Plan` that `plan()` returns.
    let mut best = [Duration::MAX; 8];
    let mut time = |slot: usize, f: &mut dyn FnMut()| {
        let t = cpu_now();
        f();
        let d = cpu_now() - t;
        if let Some(b) = best.get_mut(slot) {
            *b = (*b).min(d);
        }
    };
    use consul_lambda_sync::plan;
    for _ in 0..runs {
        time(0, &mut || {
            drop(consul_lambda_sync::ffi::call("plan", &text))
        });
        let mut parsed = None;
        time(1, &mut || {
            parsed = serde_json::from_str::<plan::PlanInput>(&text).ok();
        });
        let Some(input) = parsed else { break };
        time(2, &mut || drop(plan::plan_summary(&input)));
        time(3, &mut || drop(plan::plan_to_json(&input)));
        time(4, &mut || drop(plan::plan(&input)));
        // The floor: read the input without building anything, copy the output
        // text (allocate and fill that many bytes), read the output.
        let scan = |t: &str| drop(serde_json::from_str::<serde::de::IgnoredAny>(t));
        time(5, &mut || scan(&text));
        time(6, &mut || drop(std::hint::black_box(out_text.clone())));
        time(7, &mut || scan(&out_text));
    }
    let [total, parse, planned, written, owned, scan_in, copy_out, scan_out] = best.map(ms);
    println!(
        "{n} functions: input {:.1} MB, output {:.1} MB, peak heap during plan {:.1} MB \
         ({:.1}x the input, output included){}",
        text.len() as f64 / 1e6,
        out_len as f64 / 1e6,
        peak as f64 / 1e6,
        peak as f64 / text.len() as f64,
        if ok { "" } else { " (FAILED)" }
    );
    println!(
        "CPU time, min of {runs}: ffi::call(\"plan\") {total:.0} ms; phases: parse {parse:.0} ms, \
         plan {planned:.0} ms, plan+write {written:.0} ms; plan() building the owned Plan {owned:.0} ms"
    );
    println!(
        "floor: scan the input JSON {scan_in:.0} ms, copy the output text {copy_out:.0} ms, \
         scan the output JSON {scan_out:.0} ms"
    );
}
