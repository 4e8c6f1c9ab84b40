//! How much of the database file the OS page cache holds, and reading it
//! back in before GetByIdAsync and DeleteAsync are measured.
//!
//! On the machines this project runs on (KVM guests), the guest's page cache
//! shrinks while most of its memory is free: the 800 MB file of a million
//! sessions, read whole, was 96% resident 20 s later and 93% after 40 s,
//! and a file left by a run minutes before was 66% resident. A lookup whose
//! page was dropped reads the virtual disk. The benchmark reads the file
//! once before GetByIdAsync and before each DeleteAsync run (each reads its
//! session), as a server that has been answering for a while would find
//! it, and reports how much of it was resident, so that a run that
//! measured the disk says so.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Reads `path` through to the end, so that the page cache holds it.
pub fn warm(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The fraction of `path`'s pages the page cache holds (mincore(2) over a
/// read-only mapping, which touches none of them).
pub fn resident(path: &Path) -> Result<f64, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len() as usize;
    if len == 0 {
        return Ok(1.0);
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: a fresh shared read-only mapping of a file we hold open; it is
    // only passed to mincore, which writes `pages` bytes into `vec`, and
    // unmapped before returning. No byte of the mapping is read.
    unsafe {
        use std::os::fd::AsRawFd;
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(format!(
                "cannot map {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        let rc = libc::mincore(addr, len, vec.as_mut_ptr());
        let err = std::io::Error::last_os_error();
        libc::munmap(addr, len);
        if rc != 0 {
            return Err(format!("mincore on {}: {err}", path.display()));
        }
    }
    let held = vec.iter().filter(|b| *b & 1 == 1).count();
    Ok(held as f64 / pages as f64)
}
