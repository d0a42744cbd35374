"""Runs a command on a new pseudo-terminal with no input and prints what it wrote (repr).
Usage: python3 in_pty.py COMMAND ARGS...  (kubectl exec -t needs a real terminal)."""
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
end = time.time() + 10
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.5)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d: break
        out += d
print(repr(out))
