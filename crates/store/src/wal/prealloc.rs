//! Preallocated segment files: the next segment is written full of zeros and
//! fsync'd by a background thread, so that neither the writer nor its fsyncs
//! ever grow a file.
//!
//! There is at most one spare, at [`SPARE_FILE_NAME`] in the log directory. It
//! is not a segment name, so listing the directory ignores it; [`Wal::open`]
//! deletes one left behind and starts over, since after a crash it may be
//! short, or hold whatever the disk held before (a file whose data was never
//! fsync'd). A spare becomes a segment only by a rename after its fsync, so a
//! file with a segment name is always whole.
//!
//! [`Wal::open`]: super::Wal::open

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use super::sync_dir;
use super::WalError;

/// The name of the spare file in the log directory.
pub(crate) const SPARE_FILE_NAME: &str = "spare.wal.tmp";

/// How many zero bytes one write call puts down: one page. The kernel keeps
/// a file's cached data in folios as large as the writes that brought them
/// in (ext4 on Linux 6.x), and an fsync writes whole dirty folios back. Zeros
/// put down a mebibyte at a time made every commit's fdatasync write a whole
/// mebibyte for the few kilobytes appended; page-sized writes keep it to the
/// pages appended to. Measured on this project's machines (write 4,200 bytes
/// and fdatasync, 2,000 times, into a 64 MiB zero-filled file): zeros written
/// 1 MiB at a time, 1,028 KiB written back per fdatasync, 146 µs and 58 µs of
/// CPU each; 4 KiB at a time, 8 KiB, 111 µs and 46 µs of CPU.
const ZEROS_PER_WRITE: u64 = 4096;

/// Deletes a spare left in `dir` by an earlier run, if there is one.
pub(crate) fn remove_leftover_spare(dir: &Path) -> Result<(), WalError> {
    let path = dir.join(SPARE_FILE_NAME);
    match fs::remove_file(&path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "wal: removed a leftover spare segment");
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(WalError::io("delete", &path)(err)),
    }
}

/// Creates (or overwrites) `path` as `size` zero bytes, really written rather
/// than `fallocate`d: ext4 marks fallocated extents unwritten, and converting
/// them on the first write is again metadata that each fsync would have to
/// write. The file is fsync'd before it is returned. Gives up with an error
/// between writes once `stop` is set.
fn create_zero_filled(path: &Path, size: u64, stop: &AtomicBool) -> Result<File, WalError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(WalError::io("create", path))?;
    let zeros = vec![0; ZEROS_PER_WRITE.min(size) as usize];
    let mut left = size;
    while left > 0 {
        if stop.load(Ordering::Relaxed) {
            return Err(WalError::io("finish", path)(io::Error::new(
                io::ErrorKind::Interrupted,
                "the log is closing",
            )));
        }
        let chunk = left.min(ZEROS_PER_WRITE) as usize;
        file.write_all(&zeros[..chunk])
            .map_err(WalError::io("write zeros to", path))?;
        left -= chunk as u64;
    }
    file.sync_all().map_err(WalError::io("fsync", path))?;
    Ok(file)
}

/// The state of the one spare, shared between the writer and the thread.
#[derive(Debug)]
enum Spare {
    /// The writer wants one; the thread is preparing it.
    Wanted,
    /// Zero-filled and fsync'd at the spare path.
    Ready(File),
    /// The thread could not prepare it, and logged why; the writer will try
    /// itself.
    Failed,
    /// Nobody is preparing one: none was asked for yet (a log that has
    /// written little never pays for a spare), or the writer is moving the
    /// last one into place; the spare path is the writer's until it asks.
    Taken,
}

#[derive(Debug)]
struct Shared {
    spare: Mutex<Spare>,
    /// Signalled when `spare` changes or `stop` is set.
    changed: Condvar,
    /// The log is being dropped: the thread exits, abandoning a spare half made.
    stop: AtomicBool,
    /// Cleared (and `changed` signalled) when the thread ends, however it
    /// ends: a writer waiting for a spare then makes one itself rather than
    /// wait for a thread that is gone.
    running: AtomicBool,
}

impl Shared {
    /// Nothing panics while holding the lock, but if something did, the state
    /// it guards is still a valid `Spare`.
    fn lock(&self) -> MutexGuard<'_, Spare> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps a zero-filled spare segment ready in the background, so that rolling
/// to a new segment costs a rename rather than writing the segment size in
/// zeros. One per log, with one thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Preallocator {
    dir: PathBuf,
    /// `dir/SPARE_FILE_NAME`.
    path: PathBuf,
    /// The length of a spare: the segment size.
    size: u64,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Preallocator {
    /// Starts the thread, which prepares a spare once [`Preallocator::request`]
    /// asks for the first one. A spare left over in `dir` must already have
    /// been removed.
    pub(crate) fn start(dir: &Path, size: u64) -> Result<Preallocator, WalError> {
        let path = dir.join(SPARE_FILE_NAME);
        let shared = Arc::new(Shared {
            spare: Mutex::new(Spare::Taken),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            running: AtomicBool::new(true),
        });
        let thread = thread::Builder::new()
            .name("skiff-wal-prealloc".into())
            .spawn({
                let shared = Arc::clone(&shared);
                let path = path.clone();
                move || prepare_spares(&shared, &path, size)
            })
            .map_err(WalError::io("start the thread preparing", &path))?;
        Ok(Preallocator {
            dir: dir.to_path_buf(),
            path,
            size,
            shared,
            thread: Some(thread),
        })
    }

    /// The length of every spare.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Asks the thread for a spare, unless one is ready, being prepared, or
    /// failed (then [`Preallocator::install`] makes one itself).
    pub(crate) fn request(&self) {
        let mut spare = self.shared.lock();
        if matches!(*spare, Spare::Taken) {
            *spare = Spare::Wanted;
            drop(spare);
            self.shared.changed.notify_all();
        }
    }

    /// Whether a spare is ready to install without waiting.
    pub(crate) fn is_ready(&self) -> bool {
        matches!(*self.shared.lock(), Spare::Ready(_))
    }

    /// Moves the spare to `target` and makes the new name durable, waiting
    /// for the thread if the spare is not ready yet, or zero-filling one here
    /// if the thread failed. Whatever happens, the thread then prepares the
    /// next spare. Returns the file, positioned at its end.
    pub(crate) fn install(&mut self, target: &Path) -> Result<File, WalError> {
        let installed = self.take().and_then(|file| {
            fs::rename(&self.path, target).map_err(WalError::io("rename", &self.path))?;
            sync_dir(&self.dir)?;
            Ok(file)
        });
        *self.shared.lock() = Spare::Wanted;
        self.shared.changed.notify_all();
        installed
    }

    /// Takes the spare out of the shared state, leaving it `Taken`.
    fn take(&mut self) -> Result<File, WalError> {
        let mut spare = self.shared.lock();
        loop {
            match std::mem::replace(&mut *spare, Spare::Taken) {
                Spare::Ready(file) => return Ok(file),
                // The thread is gone (it would only be if it panicked): nobody
                // is preparing one.
                Spare::Wanted if !self.shared.running.load(Ordering::Relaxed) => break,
                Spare::Wanted => {
                    *spare = Spare::Wanted;
                    spare = self
                        .shared
                        .changed
                        .wait(spare)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Spare::Failed => break,
                // Never asked for: nobody is preparing one.
                Spare::Taken => break,
            }
        }
        drop(spare);
        create_zero_filled(&self.path, self.size, &AtomicBool::new(false))
    }
}

impl Drop for Preallocator {
    fn drop(&mut self) {
        {
            // Set under the lock, so the thread cannot miss it between
            // checking and waiting.
            let _spare = self.shared.lock();
            self.shared.stop.store(true, Ordering::Relaxed);
        }
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(path = %self.path.display(), "wal: the thread preparing spare segments panicked");
            }
        }
    }
}

/// The thread: whenever a spare is wanted, prepares it, until told to stop.
fn prepare_spares(shared: &Shared, path: &Path, size: u64) {
    /// Says the thread ended, on any way out, unwinding included.
    struct Ended<'a>(&'a Shared);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            let _spare = self.0.lock();
            self.0.running.store(false, Ordering::Relaxed);
            self.0.changed.notify_all();
        }
    }
    let _ended = Ended(shared);
    loop {
        {
            let mut spare = shared.lock();
            while !matches!(*spare, Spare::Wanted) && !shared.stop.load(Ordering::Relaxed) {
                spare = shared
                    .changed
                    .wait(spare)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
        }
        let prepared = create_zero_filled(path, size, &shared.stop);
        let mut spare = shared.lock();
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        *spare = match prepared {
            Ok(file) => Spare::Ready(file),
            Err(err) => {
                tracing::warn!(%err, "wal: cannot prepare the next segment; the writer will try when it needs one");
                Spare::Failed
            }
        };
        drop(spare);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::segment::is_zeros;

    fn zeros_of_len(path: &Path, len: usize) -> bool {
        let bytes = fs::read(path).expect("read");
        bytes.len() == len && is_zeros(&bytes)
    }

    #[test]
    fn install_moves_a_zero_filled_spare_into_place_again_and_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spares = Preallocator::start(dir.path(), 3000).expect("start");
        for name in ["a.wal", "b.wal", "c.wal"] {
            let target = dir.path().join(name);
            spares.install(&target).expect("install");
            assert!(zeros_of_len(&target, 3000), "{name}");
        }
        drop(spares);
        let spare = dir.path().join(SPARE_FILE_NAME);
        assert!(
            !spare.exists() || is_zeros(&fs::read(&spare).expect("read")),
            "a spare holds something other than zeros"
        );
    }

    #[test]
    fn a_writer_waiting_for_a_spare_makes_one_itself_once_the_thread_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spares = Preallocator::start(dir.path(), 3000).expect("start");
        // End the thread as a panic would: without the writer's knowing.
        {
            let _spare = spares.shared.lock();
            spares.shared.stop.store(true, Ordering::Relaxed);
        }
        spares.shared.changed.notify_all();
        spares
            .thread
            .take()
            .expect("the thread")
            .join()
            .expect("it ends");
        spares.shared.stop.store(false, Ordering::Relaxed);
        spares.request();
        let target = dir.path().join("a.wal");
        let (done, installed) = std::sync::mpsc::channel();
        let installing = thread::spawn(move || {
            let result = spares.install(&target).map(|_| ());
            let _ = done.send(result);
            spares
        });
        installed
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("install does not wait for a thread that is gone")
            .expect("the writer made the spare itself");
        drop(installing.join());
        assert!(zeros_of_len(&dir.path().join("a.wal"), 3000));
    }

    #[test]
    fn a_spare_that_cannot_be_made_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("gone");
        let mut spares = Preallocator::start(&gone, 3000).expect("start");
        let err = spares
            .install(&gone.join("a.wal"))
            .expect_err("the directory is missing");
        let message = err.to_string();
        assert!(
            message.contains(&gone.join(SPARE_FILE_NAME).display().to_string()),
            "{message}"
        );

        // Once the directory is there, the next install succeeds, whether the
        // thread or the writer makes the spare.
        fs::create_dir(&gone).expect("create dir");
        let target = gone.join("a.wal");
        spares.install(&target).expect("install");
        assert!(zeros_of_len(&target, 3000));
    }
}
