//! The `llm-sidecar` binary: process-wide memory choices, then the command line, handed over to
//! the library.

/// The binary's allocator (the library leaves the choice to its embedder).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// No transparent huge pages for this process: where the kernel is set to `always`, every 2 MiB
/// region the allocator touches becomes resident whole, doubling a small proxy's memory for no
/// gain. Run from the executable's initialisers, before the first allocation.
#[cfg(target_os = "linux")]
extern "C" fn no_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments only and touches no memory;
    // on kernels without it, it fails harmlessly.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static NO_HUGE_PAGES: extern "C" fn() = no_huge_pages;

fn main() {
    std::process::exit(llm_sidecar::cli::main());
}
