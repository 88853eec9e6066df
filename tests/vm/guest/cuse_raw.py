"""Edge cases of a CUSE TPM device (guest side of cuse.sh; python3 of the
host, run in the guest's chroot): python3 cuse_raw.py /dev/NAME

Expects a running TPM 2 with no other open file on the device. Prints
"VMTEST KEY VALUE" lines; cuse.sh asserts on them.
"""
import errno
import fcntl
import os
import struct
import sys

DEV = sys.argv[1]

# ioctl numbers: _IOR/_IOWR('P', code - 1, size) (include/vtpm/ctrl_ioctl.h)
PTM_HASH_START = 0x80045005
PTM_HASH_DATA = 0xD0045006  # struct ptm_hdata: u32 length + 4096 bytes
PTM_HASH_END = 0x80045007
PTM_RESET_TPMESTABLISHED = 0xC004500A
PTM_GET_STATEBLOB = 0xCC10500B  # struct ptm_getstate: 12-byte request, 16 + 3072 reply
PTM_SET_DATAFD = 0x8004500F
PTM_UNKNOWN = 0x80045063  # nr 0x63: no such command


def say(key, *vals):
    print("VMTEST", key, *vals, flush=True)


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def ioctl_res(fd, req, buf):
    """The ioctl's 4-byte result (host order) or the errno name."""
    b = bytearray(buf)
    try:
        fcntl.ioctl(fd, req, b, True)
    except OSError as e:
        return errname(e)
    return "0x%x" % struct.unpack_from("=I", b)[0]


fd = os.open(DEV, os.O_RDWR)

# one open file at a time
try:
    os.close(os.open(DEV, os.O_RDWR))
    say("py-second-open", "ok")
except OSError as e:
    say("py-second-open", errname(e))

# a response read in pieces: 10 bytes, then the rest, then nothing
n = os.write(fd, bytes.fromhex("80010000000c0000017b0010"))  # GetRandom(16)
a = os.read(fd, 10)
b = os.read(fd, 4096)
c = os.read(fd, 4096)
say("py-split-read", n, a.hex(), len(b), len(c))

# a write longer than 4096 bytes is cut to 4096 (and acknowledged so)
cmd = bytes.fromhex("8001" + "%08x" % 5000 + "0000017b") + bytes(4990)
try:
    n = os.write(fd, cmd)
    rsp = os.read(fd, 4096)
    say("py-big-write", n, rsp[:10].hex())
except OSError as e:
    say("py-big-write", errname(e))

# ioctls CUSE does not have
say("py-set-datafd", ioctl_res(fd, PTM_SET_DATAFD, bytes(4)))
say("py-unknown-ioctl", ioctl_res(fd, PTM_UNKNOWN, bytes(4)))

# reset of the established flag from locality 5: TPM_BAD_LOCALITY (0x3d)
say("py-reset-est-loc5", ioctl_res(fd, PTM_RESET_TPMESTABLISHED, bytes([5, 0, 0, 0])))

# hash data above 4096 bytes: TPM_FAIL (9); a sequence still completes
say("py-hash-start", ioctl_res(fd, PTM_HASH_START, bytes(4)))
say("py-hash-data-big", ioctl_res(fd, PTM_HASH_DATA, struct.pack("=I", 5000) + bytes(4096)))
say("py-hash-data", ioctl_res(fd, PTM_HASH_DATA, struct.pack("=I", 3) + b"abc" + bytes(4093)))
say("py-hash-end", ioctl_res(fd, PTM_HASH_END, bytes(4)))

# A volatile blob is longer than one 3072-byte packet: after the first GET
# the rest can be read(), and a write() meanwhile fails with EIO.
b = bytearray(struct.pack("=III", 0, 2, 0) + bytes(16 + 3072 - 12))
try:
    fcntl.ioctl(fd, PTM_GET_STATEBLOB, b, True)
    res, _, tot, length = struct.unpack_from("=IIII", b)
    say("py-getblob", "0x%x" % res, "total>3072" if tot > 3072 else tot, length)
except OSError as e:
    say("py-getblob", errname(e))
try:
    os.write(fd, bytes.fromhex("80010000000c0000017b0010"))
    say("py-write-during-blob", "ok")
except OSError as e:
    say("py-write-during-blob", errname(e))

os.close(fd)
# a new open starts in command mode again
fd = os.open(DEV, os.O_RDWR)
try:
    os.write(fd, bytes.fromhex("80010000000c0000017b0010"))
    say("py-reopen-command", os.read(fd, 4096)[:12].hex())
except OSError as e:
    say("py-reopen-command", errname(e))
os.close(fd)
# the device can be opened again once closed
try:
    os.close(os.open(DEV, os.O_RDWR))
    say("py-reopen", "ok")
except OSError as e:
    say("py-reopen", errname(e))
