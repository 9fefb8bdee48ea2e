#!/usr/bin/env python3
"""Control experiment for `faults::disk::sqlite_on_a_filesystem_turned_read_only_loses_nothing`.

No hub, no SQLite: one thread appends 4 KiB blocks to a file on a fresh ext4 loop device
(mounted `errors=remount-ro`) and counts a block as acknowledged only once `fdatasync` returned
0. The main thread triggers an ext4 error (`/sys/fs/ext4/<dev>/trigger_fs_error`) under that
load, then does what an operator does: unmount, detach the loop device, `e2fsck -fy` (skipped
with NOFSCK=1: the kernel replays the journal at mount), mount again, and compares the file's
size with what was acknowledged.

On Linux 6.18 (this machine, 2026-12-06) the last acknowledged block is missing in about one
run in 25-30, with and without e2fsck: when the error aborts the journal, ext4 can lose the
last write whose fdatasync had already succeeded. The hub's test loses its last acknowledged
commit at the same rate, and only that one, so its failures are this kernel behaviour, not the
hub's. Needs root, e2fsprogs and util-linux. Usage: ext4_fdatasync_control.py [RUNS]
"""
import os
import subprocess
import sys
import threading
import time


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def one_run(work):
    mnt, img = f"{work}/mnt", f"{work}/fs.img"
    subprocess.run(["rm", "-rf", work])
    os.makedirs(mnt)
    with open(img, "wb") as f:
        f.truncate(96 << 20)
    run("mkfs.ext4", "-q", "-F", img)
    run("mount", "-o", "loop,errors=remount-ro", img, mnt)
    dev = subprocess.run(["findmnt", "-n", "-o", "SOURCE", mnt],
                         capture_output=True, text=True).stdout.strip()
    acked, stop = [0], [False]

    def writer():
        fd = os.open(f"{mnt}/wal", os.O_RDWR | os.O_CREAT)
        try:
            while not stop[0]:
                os.write(fd, (b"%08d" % acked[0]) * 512)
                os.fdatasync(fd)
                acked[0] += 1
        except OSError:
            pass
        os.close(fd)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.15)
    with open(f"/sys/fs/ext4/{os.path.basename(dev)}/trigger_fs_error", "w") as f:
        f.write("1")
    time.sleep(0.05)
    stop[0] = True
    thread.join()
    run("umount", mnt)
    subprocess.run(["losetup", "-d", dev], capture_output=True)
    while subprocess.run(["losetup", "-j", img], capture_output=True, text=True).stdout.strip():
        time.sleep(0.02)
    if not os.environ.get("NOFSCK"):
        subprocess.run(["e2fsck", "-fy", img], capture_output=True)
    run("mount", "-o", "loop", img, mnt)
    have = os.path.getsize(f"{mnt}/wal") // 4096
    run("umount", mnt)
    subprocess.run(["rm", "-rf", work])
    return acked[0], have


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    lost = 0
    for i in range(runs):
        acked, have = one_run("/tmp/ext4-fdatasync-control")
        verdict = "ok" if have >= acked else "LOST"
        lost += verdict == "LOST"
        print(f"run {i}: {acked} blocks acknowledged, {have} on disk after the repair: {verdict}",
              flush=True)
    print(f"runs that lost an acknowledged block: {lost} of {runs}")


if __name__ == "__main__":
    main()
