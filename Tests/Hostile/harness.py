#!/usr/bin/env python3
"""Hostile-input harness for the `flows` binary (issue 28).

Runs a few hundred malformed or hostile command lines and files through every subcommand and
records, per class of input: crashes (death by a signal), hangs (over 20 s), destroyed inputs
(an input file changed, lost or given another mode), non-finite output with exit 0, garbage
accepted with exit 0 (a case that must fail exited 0), multi-line or malformed error messages,
and temporary files left behind.

    python3 Tests/Hostile/harness.py .build/release/flows [--keep] [--show]

Files are made in a fresh temporary folder (removed unless --keep). Device nodes for the
"/dev/null" and "/dev/full" cases are made inside that folder (mknod, when run as root), so a
tool that replaced its output file could never replace the system's devices.
"""
import hashlib, json, os, random, re, shutil, signal, stat, struct, subprocess, sys, tempfile, time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".build/release/flows")
KEEP = "--keep" in sys.argv
SHOW = "--show" in sys.argv   # print every case's status and first error line
ROOT = tempfile.mkdtemp(prefix="flows-hostile-")
IN, OUT = os.path.join(ROOT, "in"), os.path.join(ROOT, "out")
os.makedirs(IN); os.makedirs(OUT)
TIMEOUT = 20

def p(name): return os.path.join(IN, name)
def o(name): return os.path.join(OUT, name)

def run(args, stdout=None, timeout=TIMEOUT):
    start = time.time()
    try:
        r = subprocess.run([BIN] + args, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=ROOT)
        return r.returncode, (r.stdout or b"") if stdout is None else b"", r.stderr, time.time() - start, False
    except subprocess.TimeoutExpired as e:
        return None, b"", b"", time.time() - start, True

# ---------------------------------------------------------------- inputs
def write(name, data, mode=0o644):
    with open(p(name), "wb") as f: f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(p(name), mode)
    return p(name)

rng = random.Random(28)
def rows(n, d, scale=1.0):
    return "\n".join(",".join(repr(rng.gauss(0, 1) * scale) for _ in range(d)) for _ in range(n)) + "\n"

write("d2.csv", rows(300, 2))
write("d1.csv", rows(300, 1))
write("d5.csv", rows(300, 5))

def npy(shape_text, payload, descr="<f8", fortran="False", version=1, header=None):
    h = header if header is not None else "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    pre = 10 if version == 1 else 12
    h += " " * ((64 - (pre + len(h) + 1) % 64) % 64) + "\n"
    length = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + length + h.encode() + payload

# models: fitted small ones of every family, by the binary itself
MODELS = {}
for flow, extra in [("maf", ["--hidden", "8"]), ("nsf", ["--hidden", "8"]), ("realnvp", ["--hidden", "8"]), ("planar", []),
                    ("radial", []), ("sylvester", []), ("iaf", ["--hidden", "8"]), ("nsf-coupling", ["--hidden", "8"])]:
    name = "m-%s.safetensors" % flow
    subprocess.run([BIN, "fit", "--data", p("d2.csv"), "--flow", flow, "--layers", "2", "--steps", "30", "--out", p(name)] + extra,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    MODELS[flow] = p(name)
subprocess.run([BIN, "fit", "--data", p("d1.csv"), "--flow", "maf", "--layers", "1", "--hidden", "4", "--steps", "20", "--out", p("m1.safetensors")], stdout=subprocess.DEVNULL, check=True)
subprocess.run([BIN, "fit", "--data", p("d5.csv"), "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "20", "--out", p("m5.safetensors")], stdout=subprocess.DEVNULL, check=True)
M = MODELS["maf"]

def safetensors_parts(path):
    d = open(path, "rb").read(); n = struct.unpack("<Q", d[:8])[0]
    return json.loads(d[8:8 + n]), d[8 + n:]

def safetensors(header, body):
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + body

# ---------------------------------------------------------------- cases
CASES = []   # (class, name, args, expect, options)
def case(cls, name, args, expect="fail", **kw): CASES.append((cls, name, args, expect, kw))

A, S, W, G, MSG, NEW, PLOT = ("arithmetic on untrusted numbers", "sizes taken on trust", "writing", "garbage with exit 0",
                              "messages", "newcomer frictions", "plots")

# --- A: .npy headers and payloads
npys = {
    "shape-overflow": npy("(4611686018427387904, 4611686018427387904)", b""),
    "shape-2^62x4": npy("(4611686018427387904, 4)", b""),
    "shape-negative": npy("(-3, 2)", b""),
    "shape-huge-digits": npy("(" + "9" * 400 + ", 2)", b""),
    "shape-float": npy("(2.5, 2)", b"\0" * 40),
    "shape-3d": npy("(2, 2, 2)", b"\0" * 64),
    "shape-empty": npy("()", b"\0" * 8),
    "shape-zero": npy("(0, 2)", b""),
    "shape-unclosed": npy("(3, 2", b"\0" * 48),
    "payload-short": npy("(3, 2)", b"\0" * 40),
    "payload-long": npy("(3, 2)", b"\0" * 56),
    "descr-int": npy("(3, 2)", b"\0" * 24, descr="<i4"),
    "descr-bigendian": npy("(3, 2)", b"\0" * 48, descr=">f8"),
    "descr-missing": npy("(3, 2)", b"\0" * 48, header="{'shape': (3, 2), }"),
    "header-len-huge": b"\x93NUMPY\x01\x00\xff\xff{'descr'",
    "header-v2-huge": b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'",
    "version-9": npy("(1, 2)", b"\0" * 16).replace(b"NUMPY\x01", b"NUMPY\x09"),
    "truncated-magic": b"\x93NUMPY\x01",
    "f8-1e300": npy("(1, 2)", struct.pack("<2d", 1e300, 0)),
    "f8-3.5e38": npy("(1, 2)", struct.pack("<2d", 3.5e38, 0)),
    "f8-nan": npy("(1, 2)", struct.pack("<2d", float("nan"), 0)),
    "f8-inf": npy("(1, 2)", struct.pack("<2d", float("-inf"), 0)),
    "f4-nan": npy("(1, 2)", struct.pack("<2f", float("nan"), 0), descr="<f4"),
    "f4-3e38": npy("(2, 2)", struct.pack("<4f", 3e38, 3e38, -3e38, 1), descr="<f4"),
    "fortran-2x3": npy("(3, 2)", struct.pack("<6d", 1, 2, 3, 4, 5, 6), fortran="True"),
    "utf8-garbage-header": b"\x93NUMPY\x01\x00\x08\x00\xff\xfe\xfd\xfc\xfb\xfa\xf9\n",
    "one-d": npy("(4,)", struct.pack("<4d", 1, 2, 3, 4)),
}
for name, data in npys.items():
    f = write("n-%s.npy" % name, data)
    for cmd in (["logprob", "--model", M, "--data", f], ["fit", "--data", f, "--flow", "maf", "--steps", "3", "--out", o("x.safetensors")],
                ["plot", "--model", M, "--data", f, "--out", o("x.svg")]):
        case(A, "npy %s %s" % (name, cmd[0]), cmd, "any" if name in ("fortran-2x3", "one-d", "f4-3e38") else "fail")

# --- A: safetensors headers, offsets and index buffers
header, body = safetensors_parts(M)
def mutate(fn):
    h = json.loads(json.dumps(header)); b = bytearray(body); fn(h, b); return safetensors(h, bytes(b))
order_key = [k for k in header if k.endswith("order")][0]
perm_key = [k for k in header if k.endswith("permutation")][0]
def set_f64(key, values):
    def fn(h, b):
        start = h[key]["data_offsets"][0]
        b[start:start + 16] = struct.pack("<2d", *values)
    return fn
weight_key = [k for k in header if k.endswith("weight")][0]
def set_shape(key, shape):
    def fn(h, b): h[key]["shape"] = shape
    return fn
def set_offsets(key, offs):
    def fn(h, b): h[key]["data_offsets"] = offs
    return fn
def set_plan(plan_fn):
    def fn(h, b):
        plan = json.loads(h["__metadata__"]["plan"]); plan_fn(plan); h["__metadata__"]["plan"] = json.dumps(plan)
    return fn
sts = {}
for key in (order_key, perm_key):
    for vals in ([1e300, 0], [3e38, 0], [-1, 0], [float("nan"), 0], [0.5, 1], [0, 0], [2, 0], [float("inf"), 0], [-1e300, 1], [9.3e18, 0]):
        sts["%s=%s" % (key.split(".")[-1], vals[0])] = mutate(set_f64(key, vals))
for shape in ([2**40, 2**40], [2**62, 4], [-1, 2], [0, 2], [8, 2, 1], [1e20, 2], ["a", 2], [8]):
    sts["shape=%s" % shape] = mutate(set_shape(weight_key, shape))
for offs in ([0, 2**62], [-8, 8], [10**30, 10**30 + 8], [8, 0], [1.5, 9], [0, len(body) + 8], [0]):
    sts["offsets=%s" % offs] = mutate(set_offsets(weight_key, offs))
def hidden(v):
    def fn(plan): plan["options"]["conditioner"]["hiddenSizes"] = v
    return fn
def layers(v):
    def fn(plan): plan["options"]["layers"] = v
    return fn
for v in ([10**9], [2**62], [-4], [0], [], [1.5], ["x"], [4] * 10000):
    sts["hidden=%s" % str(v)[:20]] = mutate(set_plan(hidden(v)))
for v in (2**62, -1, 0, 10**9, 1e300, "2"):
    sts["layers=%s" % v] = mutate(set_plan(layers(v)))
sts["plan-not-json"] = mutate(lambda h, b: h["__metadata__"].__setitem__("plan", "{not json"))
sts["plan-deep"] = mutate(lambda h, b: h["__metadata__"].__setitem__("plan", "[" * 100000 + "]" * 100000))
sts["plan-unknown-type"] = mutate(set_plan(lambda plan: plan.__setitem__("type", "Evil")))
sts["no-metadata"] = mutate(lambda h, b: h.pop("__metadata__"))
sts["missing-tensor"] = mutate(lambda h, b: h.pop(weight_key))
sts["dtype-I64"] = mutate(lambda h, b: h[weight_key].__setitem__("dtype", "I64"))
sts["header-length-huge"] = struct.pack("<Q", 2**63 - 1) + b"{}"
sts["header-length-past-end"] = struct.pack("<Q", 10**6) + b"{}"
sts["empty-file"] = b""
sts["seven-bytes"] = b"\x01\x02\x03\x04\x05\x06\x07"
sts["duplicate-key-plan"] = open(M, "rb").read().replace(b'\\"hiddenSizes\\":[8]', b'\\"hiddenSizes\\":[1000000000],\\"hiddenSizes\\":[8]')
h2, b2 = safetensors_parts(M)
def absurd(scale):
    b = bytearray(b2)
    for k, v in h2.items():
        if k == "__metadata__" or v["dtype"] != "F32": continue
        s, e = v["data_offsets"]
        b[s:e] = struct.pack("<%df" % ((e - s) // 4), *([scale] * ((e - s) // 4)))
    return safetensors(h2, bytes(b))
sts["weights-3e37"] = absurd(3e37)
sts["weights-1e20"] = absurd(1e20)
sts["weights-nan"] = absurd(float("nan"))
sts["weights-inf"] = absurd(float("inf"))
for name, data in sts.items():
    f = write("s-%s.safetensors" % re.sub(r"[^A-Za-z0-9=.+-]", "_", name), data)
    cls = S if name.startswith(("hidden", "layers", "shape=[2", "shape=[1e20")) else (G if name.startswith("weights") else A)
    for cmd in (["logprob", "--model", f, "--data", p("d2.csv")], ["sample", "--model", f, "-n", "5"], ["info", "--model", f],
                ["plot", "--model", f, "--out", o("x.svg")]):
        expect = "fail"
        if name in ("weights-1e20",) or (name.startswith("order=") or name.startswith("permutation=")) and name.split("=")[1] in ("0.0", "0", "2"):
            expect = "any"
        if cmd[0] == "info" and name.startswith("weights"):
            expect = "any"
        case(cls, "model %s %s" % (name, cmd[0]), cmd, expect)

# --- S: sizes from the command line
for args in (["sample", "--model", M, "-n", "10000000000"], ["sample", "--model", M, "-n", "9223372036854775807"],
             ["sample", "--model", M, "-n", "99999999999999999999"],
             ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "200000,200000", "--out", o("x.safetensors")],
             ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "9223372036854775807", "--out", o("x.safetensors")],
             ["fit", "--data", p("d2.csv"), "--flow", "planar", "--layers", "4611686018427387904", "--out", o("x.safetensors")],
             ["fit", "--data", p("d2.csv"), "--flow", "nsf", "--bins", "1000000000", "--out", o("x.safetensors")],
             ["fit", "--data", p("d2.csv"), "--flow", "maf", "--layers", "100000000", "--out", o("x.safetensors")],
             ["vi", "--energy", "u1", "--flow", "planar", "--samples", "100000000000", "--out", o("x.safetensors")],
             ["vi", "--energy", "u1", "--flow", "maf", "--hidden", "1000000000", "--out", o("x.safetensors")],
             ["vi", "--energy", "u1", "--flow", "sylvester", "--layers", "4611686018427387904", "--out", o("x.safetensors")],
             ["plot", "--model", M, "--samples", "10000000", "--out", o("x.svg")],
             ["plot", "--model", M, "--samples", "9223372036854775807", "--out", o("x.svg")],
             ["bench", "--task", "gemm", "--shapes", "100000x100000x100000"], ["bench", "--task", "gemm", "--shapes", "4611686018427387904x4x4"],
             ["bench", "--task", "gemm", "--shapes", "1048577x1x1"], ["bench", "--task", "gemm", "--steps", "10000000000000"],
             ["demo", "--hidden", "1000000000", "--out", o("demo")], ["demo", "--steps", "-1", "--out", o("demo")]):
    case(S, " ".join(a if len(a) < 20 else a[:16] + "…" for a in args[:1] + args[-4:]), args)
# a wide data file: 200000 columns for sylvester (D² parameters)
write("wide.csv", ",".join("0.5" for _ in range(200000)) + "\n" + ",".join("0.25" for _ in range(200000)) + "\n")
# sylvester (D² = 4e10) and nsf (1.5e9 spline outputs) are refused; maf (1.9e8 parameters) and
# realnvp are real work that may take longer than 20 s on a busy machine.
for flow in ("sylvester", "maf", "realnvp", "nsf", "nsf-coupling"):
    case(S, "fit wide %s" % flow, ["fit", "--data", p("wide.csv"), "--flow", flow, "--validation-fraction", "0", "--steps", "1", "--out", o("x.safetensors")],
         "any" if flow in ("maf", "realnvp") else "fail", timeout=90 if flow in ("maf", "realnvp") else TIMEOUT)
# a batch larger than the data is the whole data set (documented), not an error
case(S, "fit batch 1e12", ["fit", "--data", p("d2.csv"), "--flow", "maf", "--batch-size", "1000000000000", "--steps", "1", "--out", o("x.safetensors")], "any")

# --- G and MSG: CSV data
csvs = {
    "nul": b"1,2\n3\x00abc,4\n", "trailing-x": "1,2\n1.5x,2\n", "hex": "1,2\n0x1p3,2\n", "inf": "1,2\ninf,2\n",
    "nan": "1,2\nnan,2\n", "NaN-word": "1,2\nNaN,2\n", "1e39": "1,2\n1e39,2\n", "-1e39": "1,2\n-1e39,2\n", "1e-50": "1,2\n1e-50,2\n",
    "empty-field": "1,2\n,2\n", "trailing-comma": "1,2\n1,2,\n", "ragged": "1,2\n1,2,3\n", "one-row": "1,2\n",
    "header-only": "x,y\n", "comments-only": "# a\n# b\n", "empty": "", "blank-lines": "\n\n\n", "bom": "\ufeff1,2\n3,4\n",
    "crlf": "1,2\r\n3,4\r\n5,6\r\n", "cr-only": "1,2\r3,4\r5,6\r", "tabs": "1\t2\n3\t4\n", "semicolon": "1;2\n3;4\n",
    "quoted": '"1","2"\n"3","4"\n', "utf8-invalid": b"1,2\n\xff\xfe,3\n", "latin1-header": b"caf\xe9,x\n1,2\n",
    "binary": bytes(range(256)) * 4, "huge-field": "1,2\n3," + "7" * 5_000_000 + "x\n", "long-number": "1,2\n" + "1" * 400 + ",2\n",
    "plus-sign": "+1,+2\n-3,-4\n", "dot-only": "1,2\n.,2\n", "exponent-only": "1,2\ne5,2\n", "spaces-inside": "1, 2\n3 ,4\n",
    "mixed-sep": "1,2\n3 4\n", "two-headers": "x,y\na,b\n1,2\n", "null-line": "1,2\n\x00\n", "unicode-minus": "1,2\n\u22121,2\n",
    "infinity-word": "1,2\ninfinity,2\n", "hex-upper": "1,2\n0X10,2\n", "3e38-ok": "1,2\n3e38,2\n", "denormal": "1,2\n1e-310,2\n",
}
for name, text in csvs.items():
    f = write("c-%s.csv" % name, text)
    ok_expected = name in ("crlf", "cr-only", "tabs", "bom", "plus-sign", "spaces-inside", "1e-50", "denormal", "3e38-ok", "one-row")
    cls = MSG if name in ("huge-field", "long-number", "1e39", "-1e39", "empty", "comments-only", "header-only", "blank-lines") else G
    case(cls, "csv %s logprob" % name, ["logprob", "--model", M, "--data", f], "any" if ok_expected else "fail")
    case(cls, "csv %s fit" % name, ["fit", "--data", f, "--flow", "maf", "--steps", "2", "--validation-fraction", "0", "--out", o("x.safetensors")],
         "any" if ok_expected else "fail")
    case(cls, "csv %s plot" % name, ["plot", "--model", M, "--data", f, "--out", o("x.svg")], "any" if ok_expected else "fail")
# data whose computations overflow float32
write("c-3e38-all.csv", "\n".join("%r,%r" % (rng.uniform(-3e38, 3e38), rng.gauss(0, 1)) for _ in range(100)) + "\n")
write("c-1e6.csv", rows(100, 2, 1e6))
for f in ("c-3e38-all.csv", "c-1e6.csv"):
    for flow in ("maf", "planar", "nsf", "realnvp"):
        case(MSG, "fit overflow %s %s" % (f, flow), ["fit", "--data", p(f), "--flow", flow, "--steps", "5", "--out", o("x.safetensors")], "any")
# special files as inputs
os.mkfifo(p("fifo"))
os.mkdir(p("folder"))
os.symlink(p("d2.csv"), p("link.csv"))
os.symlink(p("nowhere"), p("dangling.csv"))
for name in ("fifo", "folder", "dangling.csv", "nonexistent.csv", "/dev/zero", "/dev/urandom", "/proc/self/status"):
    f = name if name.startswith("/") else p(name)
    for cmd in (["logprob", "--model", M, "--data", f], ["fit", "--data", f, "--flow", "maf", "--out", o("x.safetensors")],
                ["sample", "--model", f, "-n", "3"], ["info", "--model", f]):
        case(G, "special %s %s" % (name, cmd[0]), cmd)
case(G, "symlink data logprob", ["logprob", "--model", M, "--data", p("link.csv")], "ok")
# mismatched columns
for data in ("d1.csv", "d5.csv"):
    case(G, "logprob columns %s" % data, ["logprob", "--model", M, "--data", p(data)])
    case(G, "fit validation columns %s" % data, ["fit", "--data", p("d2.csv"), "--validation", p(data), "--flow", "maf", "--out", o("x.safetensors")])

# --- W: writing
write("victim.csv", rows(50, 2), mode=0o640)
case(W, "fit --out = --data", ["fit", "--data", p("victim.csv"), "--flow", "maf", "--steps", "2", "--out", p("victim.csv")])
case(W, "fit --out = --validation", ["fit", "--data", p("d2.csv"), "--validation", p("victim.csv"), "--flow", "maf", "--steps", "2", "--out", p("victim.csv")])
case(W, "fit --out = symlink to data", ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "2", "--out", p("link.csv")])
case(W, "sample --out = --model", ["sample", "--model", M, "-n", "3", "--out", M])
case(W, "logprob --out = --data", ["logprob", "--model", M, "--data", p("victim.csv"), "--out", p("victim.csv")])
case(W, "logprob --out = --model", ["logprob", "--model", M, "--data", p("victim.csv"), "--out", M])
case(W, "plot --out = model (svg name)", ["plot", "--model", M, "--out", M])
os.link(M, p("hardlink.svg"))
case(W, "plot --out = hard link of model", ["plot", "--model", M, "--out", p("hardlink.svg")])
case(W, "vi --plot = --out", ["vi", "--energy", "u1", "--flow", "planar", "--steps", "2", "--out", o("v.svg"), "--plot", o("v.svg")])
case(W, "vi --plot = ./--out", ["vi", "--energy", "u1", "--flow", "planar", "--steps", "2", "--out", o("v.svg"), "--plot", OUT + "/./v.svg"])
for target in ("folder", "nowhere/x.safetensors", ""):
    for cmd in (["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "2", "--out"], ["sample", "--model", M, "-n", "3", "--out"],
                ["logprob", "--model", M, "--data", p("d2.csv"), "--out"]):
        case(W, "%s --out '%s'" % (cmd[0], target), cmd + [p(target) if target else ""])
devices = os.geteuid() == 0
if devices:
    os.mknod(o("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(o("full"), 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    for cmd in (["sample", "--model", M, "-n", "5", "--out", o("null")], ["logprob", "--model", M, "--data", p("d2.csv"), "--out", o("null")],
                ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "2", "--out", o("null")]):
        case(W, "%s --out device null" % cmd[0], cmd, "ok", device=o("null"))
    for cmd in (["sample", "--model", M, "-n", "5", "--out", o("full")], ["logprob", "--model", M, "--data", p("d2.csv"), "--out", o("full")],
                ["plot", "--model", M, "--out", o("full.svg")]):
        case(W, "%s --out device full" % cmd[0], cmd, "fail" if "full.svg" not in cmd[-1] else "any", device=o("full"))
    for cmd in (["sample", "--model", M, "-n", "5"], ["logprob", "--model", M, "--data", p("d2.csv")], ["info", "--model", M],
                ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "3", "--out", o("y.safetensors")], ["--help"]):
        case(W, "%s stdout full" % cmd[0], cmd, "fail", stdout_full=True)
os.mkfifo(o("outfifo"))
case(W, "sample --out FIFO without reader", ["sample", "--model", M, "-n", "5", "--out", o("outfifo")])
# mode kept: an existing 0600 output overwritten
case(W, "sample over 0600 file keeps mode", ["sample", "--model", M, "-n", "5", "--out", o("mode.csv")], "ok", premode=0o600)
case(W, "fit over 0600 model keeps mode", ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "2", "--out", o("mode.safetensors")], "ok", premode=0o600)
case(W, "sample --out through symlink", ["sample", "--model", M, "-n", "5", "--out", o("outlink.csv")], "ok", outlink=True)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    case(W, "fit killed by %s" % sig.name, ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "100000", "--out", o("k.safetensors")], "any", kill=sig)

# --- MSG: command lines
msg = [
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "-5", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "abc", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "1e3", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--lr", "-1", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--lr", "nan", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--lr", "inf", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--lr", "0", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "-4", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "4,-2", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "4,,2", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "a", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--hidden", "99999999999999999999", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--batch-size", "0", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--batch-size", "-1", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--layers", "0", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--layers", "-2", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "nsf", "--bins", "1", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "nsf", "--bins", "-8", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--bins", "4", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "planar", "--hidden", "4", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "evil" * 100, "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf\nx", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--validation-fraction", "1", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--validation-fraction", "-0.1", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--validation-fraction", "nan", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--keep", "worst", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--seed", "-1", "--out", o("x")],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--seed", "18446744073709551616", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf"],
    ["fit", "--flow", "maf", "--out", o("x")], ["fit", "--data", p("d2.csv"), "--flow", "maf", "--out", o("x"), "--bogus"],
    ["fit", "--data", p("d2.csv"), "--flow", "maf", "--out", o("x"), "extra-argument"],
    ["sample", "--model", M, "-n", "-3"], ["sample", "--model", M, "-n", "x"], ["sample", "--model", M], ["sample", "--model", M, "-n", "3", "--seed", "-1"],
    ["vi", "--energy", "u9", "--flow", "planar", "--out", o("x")], ["vi", "--energy", "u1", "--flow", "planar", "--samples", "-1", "--out", o("x")],
    ["vi", "--energy", "u1", "--flow", "planar", "--samples", "0", "--out", o("x")], ["vi", "--energy", "u1", "--flow", "planar", "--bins", "4", "--out", o("x")],
    ["vi", "--energy", "u1", "--flow", "maf", "--hidden", "-4", "--out", o("x")], ["vi", "--energy", "u1", "--flow", "planar", "--plot", o("p.png"), "--out", o("x")],
    ["plot", "--model", M, "--out", o("p.png")], ["plot", "--model", M, "--samples", "0", "--out", o("p.svg")], ["plot", "--out", o("p.svg")],
    ["plot", "--energy", "u7", "--out", o("p.svg")], ["plot", "--model", p("m5.safetensors"), "--energy", "u1", "--out", o("p.svg")],
    ["bench", "--task", "gemm", "--shapes", "-1x2x3"], ["bench", "--task", "gemm", "--shapes", "1x-2x3"], ["bench", "--task", "gemm", "--shapes", "axbxc"],
    ["bench", "--task", "gemm", "--shapes", ""], ["bench", "--task", "gemm", "--shapes", "2x2x2:XY"], ["bench", "--task", "nope"], ["bench", "--task", "gemm", "--steps", "0"],
    ["bench", "--task", "maf-moons", "--steps", "1", "--data-dir", p("nowhere")], ["nosuchcommand"], ["logprob"], ["info"],
    ["logprob", "--model", M, "--data", p("d2.csv"), "--allow-infinite", "--bogus"], ["demo", "--hidden", "-4", "--out", o("demo")],
]
for args in msg:
    case(MSG, "cli " + " ".join(a.replace(ROOT, "") for a in args)[:70], args)

# --- NEW: newcomer frictions (must succeed and say the right thing)
for cmd in ("fit", "vi", "sample", "logprob", "plot", "info", "bench", "demo"):
    case(NEW, "%s --help" % cmd, [cmd, "--help"], "ok", contains=["USAGE", "OPTIONS"] + (["(default: 0.001)", "16 for", "default: 64,64", "sylvester"] if cmd in ("fit", "vi") else []))
case(NEW, "--help", ["--help"], "ok")
case(NEW, "no arguments: the overview", [], "any")
case(NEW, "fit says which weights", ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "30", "--out", o("b.safetensors")], "ok", contains=["best validation step"])
case(NEW, "fit --keep last", ["fit", "--data", p("d2.csv"), "--flow", "maf", "--steps", "30", "--keep", "last", "--json", "--out", o("l.safetensors")], "ok",
     contains=['"saved_weights": "last"'])
case(NEW, "info --json plan object", ["info", "--model", M, "--json"], "ok", contains=['"plan": {'])
case(NEW, "fit --help 1-D npy", ["fit", "--help"], "ok", contains=["1-D array of N values is N rows"])
case(NEW, "fit small data split", ["fit", "--data", p("c-one-row.csv"), "--flow", "maf", "--out", o("x.safetensors")], "fail", contains_err=["--validation-fraction"])
for flow, path in MODELS.items():
    case(NEW, "sample %s" % flow, ["sample", "--model", path, "-n", "200"], "ok")
    case(NEW, "logprob %s" % flow, ["logprob", "--model", path, "--data", p("d2.csv")], "ok")
    case(NEW, "info %s" % flow, ["info", "--model", path], "ok")
case(NEW, "fit npy 1-D", ["fit", "--data", p("n-one-d.npy"), "--flow", "maf", "--steps", "3", "--validation-fraction", "0", "--out", o("x.safetensors")], "ok")

# --- PLOT
for flow, path in MODELS.items():
    case(PLOT, "plot %s" % flow, ["plot", "--model", path, "--out", o("p-%s.svg" % flow)], "ok", svg=["<svg", ">flow<", ">p(x)<"])
case(PLOT, "plot 1-D model", ["plot", "--model", p("m1.safetensors"), "--out", o("p1.svg")], "ok", svg=["<svg"])
case(PLOT, "plot 5-D model", ["plot", "--model", p("m5.safetensors"), "--data", p("d5.csv"), "--out", o("p5.svg")], "ok", svg=["<svg", "data"])
case(PLOT, "plot with data", ["plot", "--model", M, "--data", p("d2.csv"), "--out", o("pd.svg")], "ok", svg=[">data<", ">flow samples<"])
for energy in ("u1", "u2", "u3", "u4", "funnel", "U1"):
    case(PLOT, "plot --energy %s" % energy, ["plot", "--energy", energy, "--out", o("e-%s.svg" % energy)], "ok", svg=[">target<"])
case(PLOT, "plot model and energy", ["plot", "--model", M, "--energy", "u1", "--out", o("me.svg")], "ok", svg=[">target<", ">flow<"])
for energy, flow in (("u1", "planar"), ("u2", "maf"), ("funnel", "realnvp"), ("u4", "nsf")):
    case(PLOT, "vi %s %s --plot" % (energy, flow), ["vi", "--energy", energy, "--flow", flow, "--steps", "30", "--out", o("v.safetensors"), "--plot", o("v-%s.svg" % energy)],
         "ok", svg=[">target<", ">flow<"])
case(PLOT, "plot absurd model", ["plot", "--model", p("s-weights-3e37.safetensors"), "--out", o("pa.svg")])
case(PLOT, "plot --samples 1", ["plot", "--model", M, "--samples", "1", "--out", o("ps.svg")], "ok", svg=["<svg"])
case(PLOT, "plot constant data", ["plot", "--model", M, "--data", p("c-one-row.csv"), "--out", o("pc.svg")], "ok", svg=["<svg"])

# ---------------------------------------------------------------- running
def snapshot():
    out = {}
    for dirpath, dirs, files in os.walk(IN):
        for name in files + dirs:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha1(open(path, "rb").read()).hexdigest()
            out[path] = (st.st_mode, digest)
    return out

NONFINITE = re.compile(rb"(?i)(?<![a-z])(nan|-?inf(inity)?)(?![a-z])")
before = snapshot()
counts = {}
problems = []
for cls, name, args, expect, kw in CASES:
    for entry in os.listdir(OUT):
        path = os.path.join(OUT, entry)
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode): os.remove(path)
        elif stat.S_ISDIR(st.st_mode): shutil.rmtree(path)
    if "premode" in kw:
        target = args[args.index("--out") + 1]
        open(target, "w").write("old\n"); os.chmod(target, kw["premode"])
    if kw.get("outlink"):
        open(o("real.csv"), "w").write("old\n"); os.symlink(o("real.csv"), o("outlink.csv"))
    c = counts.setdefault(cls, {"cases": 0, "crashes": 0, "hangs": 0, "destroyed": 0, "garbage_exit0": 0, "nonfinite_exit0": 0,
                                "multiline": 0, "unexpected": 0, "temp_left": 0})
    c["cases"] += 1
    if "kill" in kw:
        proc = subprocess.Popen([BIN] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        time.sleep(1.5); proc.send_signal(kw["kill"])
        try: proc.wait(10); rc, out, err, hung = proc.returncode, b"", proc.stderr.read(), False
        except subprocess.TimeoutExpired: proc.kill(); rc, out, err, hung = None, b"", b"", True
    elif kw.get("stdout_full"):
        with open(o("full"), "wb") as full:
            rc, out, err, _, hung = run(args, stdout=full)
    else:
        rc, out, err, _, hung = run(args, timeout=kw.get("timeout", TIMEOUT))
    text = err.decode(errors="replace")
    issues = []
    if hung: c["hangs"] += 1; issues.append("hang")
    elif rc < 0 and "kill" not in kw: c["crashes"] += 1; issues.append("signal %d" % -rc)
    elif "kill" in kw and rc not in (-kw["kill"], 128 + kw["kill"], 1):
        issues.append("killed: exit %s" % rc)
    if not hung and rc is not None and rc >= 0 and "kill" not in kw:
        if expect == "fail" and rc == 0: c["garbage_exit0"] += 1; issues.append("exit 0 where a failure was expected")
        if expect == "ok" and rc != 0: c["unexpected"] += 1; issues.append("failed: %s" % text.strip()[:200])
        if rc == 0 and "allow-infinite" not in args and "--help" not in args:
            outputs = [out] + [open(os.path.join(OUT, f), "rb").read() for f in os.listdir(OUT)
                               if f.endswith((".csv", ".svg")) and os.path.isfile(os.path.join(OUT, f))]
            if any(NONFINITE.search(x) for x in outputs): c["nonfinite_exit0"] += 1; issues.append("non-finite output with exit 0")
        if rc != 0:
            lines = [l for l in text.splitlines() if l.strip() and not l.startswith("reading ")]
            if len(lines) != 1 or not lines[0].startswith("error: ") or "NSCocoaErrorDomain" in text or "Fatal error" in text:
                c["multiline"] += 1; issues.append("error text: %r" % text[:300])
            elif rc not in (1, 2): issues.append("exit status %d" % rc)
        for want in kw.get("contains", []):
            if want not in " ".join(out.decode(errors="replace").split()): issues.append("stdout lacks %r" % want)
        for want in kw.get("contains_err", []):
            if want not in text: issues.append("stderr lacks %r" % want)
        for want in kw.get("svg", []):
            svgs = [open(os.path.join(OUT, f), "rb").read() for f in os.listdir(OUT) if f.endswith(".svg")]
            if not any(want.encode() in s for s in svgs): issues.append("svg lacks %r" % want)
        if "premode" in kw and rc == 0:
            target = args[args.index("--out") + 1]
            if stat.S_IMODE(os.stat(target).st_mode) != kw["premode"]: c["destroyed"] += 1; issues.append("mode changed")
        if kw.get("outlink") and not os.path.islink(o("outlink.csv")): c["destroyed"] += 1; issues.append("symlink replaced")
    if "device" in kw and not stat.S_ISCHR(os.lstat(kw["device"]).st_mode):
        c["destroyed"] += 1; issues.append("device node replaced")
        os.remove(kw["device"]); os.mknod(kw["device"], 0o666 | stat.S_IFCHR, os.makedev(1, 3 if kw["device"].endswith("null") else 7))
    after = snapshot()
    if after != before:
        changed = [k for k in set(before) | set(after) if before.get(k) != after.get(k)]
        c["destroyed"] += 1; issues.append("inputs changed: %s" % [x.replace(ROOT, "") for x in changed][:5])
        before = after
    left = [f for d in (IN, OUT, ROOT) for f in os.listdir(d) if f.startswith(".") or ".tmp" in f]
    if left:
        c["temp_left"] += 1; issues.append("temporary files left: %s" % left)
        for d in (IN, OUT, ROOT):
            for f in os.listdir(d):
                if f.startswith(".") or ".tmp" in f: os.remove(os.path.join(d, f))
    if issues: problems.append((cls, name, issues))
    if SHOW: print("[%s] %s -> %s %s" % (cls, name, "hang" if hung else rc, text.strip().splitlines()[-1][:240] if text.strip() else ""))

total = sum(c["cases"] for c in counts.values())
print("%d cases against %s" % (total, BIN))
keys = ["cases", "crashes", "hangs", "destroyed", "garbage_exit0", "nonfinite_exit0", "multiline", "unexpected", "temp_left"]
print("| class | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
for cls in (A, S, W, G, MSG, NEW, PLOT):
    if cls in counts: print("| %s | " % cls + " | ".join(str(counts[cls][k]) for k in keys) + " |")
for cls, name, issues in problems:
    print("PROBLEM [%s] %s: %s" % (cls, name, "; ".join(issues)))
if not KEEP: shutil.rmtree(ROOT, ignore_errors=True)
else: print("kept", ROOT)
sys.exit(1 if any(c["crashes"] or c["hangs"] or c["destroyed"] or c["garbage_exit0"] or c["nonfinite_exit0"] for c in counts.values()) else 0)
