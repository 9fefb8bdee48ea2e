//! Filesystems a fault test makes and removes itself: a small tmpfs, an ext4 image on a loop
//! device mounted `errors=remount-ro`, and a file that fills a filesystem to its last byte.
//! Each mount is undone when its guard drops, even if the test fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed (the fault tests need root, as CI has): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A mounted filesystem; unmounted (lazily, so a failed test cannot leave it busy) on drop.
pub(crate) struct Mount {
    _holder: tempfile::TempDir,
    pub dir: PathBuf,
    image: Option<PathBuf>,
}

impl Mount {
    /// A tmpfs of `megabytes`.
    pub fn tmpfs(megabytes: u32) -> Mount {
        let holder = tempfile::tempdir().unwrap();
        let dir = holder.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m"),
                "tmpfs",
                text(&dir),
            ],
        );
        Mount {
            _holder: holder,
            dir,
            image: None,
        }
    }

    /// A fresh ext4 image of `megabytes` on a loop device, mounted `errors=remount-ro`.
    pub fn ext4(megabytes: u32) -> Mount {
        let holder = tempfile::tempdir().unwrap();
        let image = holder.path().join("fs.img");
        let dir = holder.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        std::fs::File::create(&image)
            .unwrap()
            .set_len(u64::from(megabytes) << 20)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", text(&image)]);
        let mount = Mount {
            _holder: holder,
            dir,
            image: Some(image),
        };
        mount.mount_image();
        mount
    }

    fn mount_image(&self) {
        let image = self.image.as_deref().unwrap();
        run(
            "mount",
            &["-o", "loop,errors=remount-ro", text(image), text(&self.dir)],
        );
    }

    /// The block device under the mount (`loop3`), as named in `/sys/fs/ext4`.
    fn device(&self) -> String {
        let out = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE", text(&self.dir)])
            .output()
            .unwrap();
        let source = String::from_utf8(out.stdout).unwrap();
        source
            .trim()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Make ext4 report an error, as a failing disk would: with `errors=remount-ro` the kernel
    /// turns the filesystem read-only at once, under the running hub.
    pub fn trigger_ext4_error(&self) {
        let device = self.device();
        std::fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "1")
            .unwrap_or_else(|e| panic!("cannot trigger an ext4 error on {device}: {e}"));
        let probe = self.dir.join(".probe");
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "the filesystem is still writable after the error"
        );
    }

    /// What an operator does once the hub is stopped: unmount, `e2fsck -fy`, mount again.
    /// The loop device is detached, and its detach awaited, before the check: while it is still
    /// attached, blocks it writes late or serves from its cache could undo `e2fsck`'s journal
    /// replay (suspected, not confirmed, in the one lost entry seen; see the test's `ignore`).
    pub fn repair_ext4(&self) {
        let device = format!("/dev/{}", self.device());
        run("umount", &[text(&self.dir)]);
        let image = self.image.as_deref().unwrap();
        let _ = Command::new("losetup").args(["-d", &device]).output();
        let start = std::time::Instant::now();
        while Command::new("losetup")
            .args(["-j", text(image)])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "{device} stays attached to the image"
            );
            // Polling the kernel's detach of the device, bounded.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // e2fsck exits 1 when it corrected something: that is success here.
        let status = Command::new("e2fsck")
            .args(["-fy", text(image)])
            .output()
            .unwrap()
            .status;
        assert!(
            matches!(status.code(), Some(0..=1)),
            "e2fsck could not repair the image: {status}"
        );
        self.mount_image();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", text(&self.dir)])
            .output();
    }
}

/// Files that fill a filesystem to its last byte; removing them frees the space again.
pub(crate) struct Filler {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl Filler {
    /// Fill the filesystem holding `dir` to its last byte.
    pub(crate) fn fill(dir: &Path) -> Filler {
        let mut filler = Filler {
            dir: dir.to_owned(),
            files: Vec::new(),
        };
        filler.top_up();
        filler
    }

    /// Take whatever space was freed since (a database truncating a file it had grown) with
    /// one more file.
    pub(crate) fn top_up(&mut self) {
        let path = self.dir.join(format!("filler.{}", self.files.len()));
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let block = vec![0x5au8; chunk];
            while file.write_all(&block).and_then(|()| file.flush()).is_ok() {}
        }
        let _ = file.sync_all();
        self.files.push(path);
    }

    pub(crate) fn remove(self) {
        for file in self.files {
            std::fs::remove_file(file).unwrap();
        }
    }
}
