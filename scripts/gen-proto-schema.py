#!/usr/bin/env python3
"""Generates crates/nodeless-core/src/proto/schema.rs: the protobuf schema of every built-in kind.

The table says, for each Kubernetes protobuf message reachable from the kinds nodeless decodes,
which field tag holds which JSON field, with which wire type, cardinality and nested message.
Three sources are combined, each for what only it knows:

- k8s-pb (crates.io, prost-generated from the upstream generated.proto files): messages, field
  tags, proto scalar types, repeated/map, nested message types.
- the upstream Go types (k8s.io/api, k8s.io/apimachinery, k8s.io/apiextensions-apiserver at the
  release k8s-pb was built from): JSON names, `omitempty`, `,inline` embedding and whether a
  scalar is a pointer. Go's protobuf encoder writes every non-pointer field even when it is
  zero, so only the Go type tells a meaningful `replicas: 0` from an unset `minReadySeconds`.
- k8s-openapi (its serde code): cross-checks every JSON name, so a wrong match fails here.

Usage (regenerate after bumping k8s-pb):
    python3 scripts/gen-proto-schema.py --go-src DIR [--k8s-pb DIR] [--k8s-openapi DIR]
where DIR holds the three Go modules as DIR/api, DIR/apimachinery, DIR/apiextensions-apiserver,
e.g. extracted with `git archive v0.35.0` from the kubernetes/api, kubernetes/apimachinery and
kubernetes/apiextensions-apiserver repositories. k8s-pb and k8s-openapi default to the copies in
~/.cargo/registry/src (k8s-pb 0.9.0, k8s-openapi 0.26.1's v1_34 module).
"""

import argparse
import glob
import os
import re
import sys

K8S_PB_VERSION = "0.9.0"
GO_RELEASE = "v0.35.0"  # the Kubernetes release k8s-pb 0.9.0 was generated from

# The kinds a protobuf body may carry: (apiVersion, kind, k8s-pb package, message).
KINDS = [
    ("v1", "Namespace", "api/core/v1", "Namespace"),
    ("v1", "Pod", "api/core/v1", "Pod"),
    ("v1", "Service", "api/core/v1", "Service"),
    ("v1", "Endpoints", "api/core/v1", "Endpoints"),
    ("v1", "ConfigMap", "api/core/v1", "ConfigMap"),
    ("v1", "Secret", "api/core/v1", "Secret"),
    ("v1", "ServiceAccount", "api/core/v1", "ServiceAccount"),
    ("v1", "Event", "api/core/v1", "Event"),
    ("v1", "Node", "api/core/v1", "Node"),
    ("v1", "LimitRange", "api/core/v1", "LimitRange"),
    ("v1", "ResourceQuota", "api/core/v1", "ResourceQuota"),
    ("v1", "PersistentVolumeClaim", "api/core/v1", "PersistentVolumeClaim"),
    ("v1", "ReplicationController", "api/core/v1", "ReplicationController"),
    ("v1", "Binding", "api/core/v1", "Binding"),
    ("apps/v1", "Deployment", "api/apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet", "api/apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet", "api/apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet", "api/apps/v1", "DaemonSet"),
    ("apps/v1", "ControllerRevision", "api/apps/v1", "ControllerRevision"),
    ("batch/v1", "Job", "api/batch/v1", "Job"),
    ("batch/v1", "CronJob", "api/batch/v1", "CronJob"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "api/autoscaling/v2", "HorizontalPodAutoscaler"),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "api/autoscaling/v1", "HorizontalPodAutoscaler"),
    ("autoscaling/v1", "Scale", "api/autoscaling/v1", "Scale"),
    ("networking.k8s.io/v1", "Ingress", "api/networking/v1", "Ingress"),
    ("networking.k8s.io/v1", "IngressClass", "api/networking/v1", "IngressClass"),
    ("networking.k8s.io/v1", "NetworkPolicy", "api/networking/v1", "NetworkPolicy"),
    ("discovery.k8s.io/v1", "EndpointSlice", "api/discovery/v1", "EndpointSlice"),
    ("coordination.k8s.io/v1", "Lease", "api/coordination/v1", "Lease"),
    ("node.k8s.io/v1", "RuntimeClass", "api/node/v1", "RuntimeClass"),
    ("policy/v1", "PodDisruptionBudget", "api/policy/v1", "PodDisruptionBudget"),
    ("policy/v1", "Eviction", "api/policy/v1", "Eviction"),
    ("events.k8s.io/v1", "Event", "api/events/v1", "Event"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition",
     "apiextensions_apiserver/pkg/apis/apiextensions/v1", "CustomResourceDefinition"),
    ("scheduling.k8s.io/v1", "PriorityClass", "api/scheduling/v1", "PriorityClass"),
    ("storage.k8s.io/v1", "StorageClass", "api/storage/v1", "StorageClass"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "api/rbac/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "api/rbac/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role", "api/rbac/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "api/rbac/v1", "RoleBinding"),
    # DeleteOptions is registered in every group version; "*" matches any apiVersion.
    ("*", "DeleteOptions", "apimachinery/pkg/apis/meta/v1", "DeleteOptions"),
    ("authentication.k8s.io/v1", "TokenRequest", "api/authentication/v1", "TokenRequest"),
    ("authentication.k8s.io/v1", "TokenReview", "api/authentication/v1", "TokenReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "api/authentication/v1", "SelfSubjectReview"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "api/authorization/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", "api/authorization/v1", "SelfSubjectRulesReview"),
    ("authorization.k8s.io/v1", "SubjectAccessReview", "api/authorization/v1", "SubjectAccessReview"),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", "api/authorization/v1", "LocalSubjectAccessReview"),
]

# Messages whose JSON form is not an object of their fields: decoded by hand in decode.rs.
SPECIAL = {
    ("apimachinery/pkg/apis/meta/v1", "Time"): "Time",
    ("apimachinery/pkg/apis/meta/v1", "MicroTime"): "MicroTime",
    ("apimachinery/pkg/apis/meta/v1", "Duration"): "Duration",
    ("apimachinery/pkg/apis/meta/v1", "FieldsV1"): "RawJson",
    ("apimachinery/pkg/api/resource", "Quantity"): "Quantity",
    ("apimachinery/pkg/util/intstr", "IntOrString"): "IntOrString",
    ("apimachinery/pkg/runtime", "RawExtension"): "RawExtension",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "Json"): "RawJson",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "JsonSchemaPropsOrArray"): "SchemaOrArray",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "JsonSchemaPropsOrBool"): "SchemaOrBool",
    ("apiextensions_apiserver/pkg/apis/apiextensions/v1", "JsonSchemaPropsOrStringArray"): "SchemaOrStringArray",
    # Go `type ExtraValue []string`: a wrapper message in protobuf, a plain array in JSON.
    ("api/authentication/v1", "ExtraValue"): "StringList",
    ("api/authorization/v1", "ExtraValue"): "StringList",
}

SCALARS = {"string": "Str", "bytes": "Bytes", "int32": "Int32", "int64": "Int64", "bool": "Bool", "double": "Double"}


def norm(name):
    return name.replace("r#", "").replace("_", "").lower()


def go_dir(pkg):
    """k8s-pb package dir -> Go module dir relative to --go-src."""
    if pkg.startswith("api/"):
        return pkg
    if pkg.startswith("apiextensions_apiserver/"):
        return "apiextensions-apiserver/" + pkg[len("apiextensions_apiserver/"):]
    return pkg  # apimachinery/pkg/...


def openapi_prefix(pkg):
    return "io.k8s." + go_dir(pkg).replace("/", ".") + "."


def proto_package(pkg):
    return "k8s.io." + pkg.replace("/", ".")


def rust_prefix(pkg):
    parts = pkg.split("/")[-2:]  # e.g. core/v1, meta/v1, apiextensions/v1
    return "".join(p[:1].upper() + p[1:] for p in parts)


# ---------------------------------------------------------------- k8s-pb

def read_type(text, i):
    """Reads a Rust type starting at text[i] up to the `,` that ends the field."""
    depth = 0
    start = i
    while i < len(text):
        c = text[i]
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            # rustfmt wraps long generics with a trailing comma: `Option<\n    a::B,\n>`.
            return "".join(text[start:i].split()).replace(",>", ">"), i
        i += 1
    raise ValueError("unterminated field type")


def resolve_path(pkg, path):
    """Resolves a prost type path written inside package `pkg` to (package, struct name)."""
    path = path.replace("::prost::alloc::boxed::Box<", "").rstrip(">")
    segs = path.split("::")
    cur = pkg.split("/")
    while segs and segs[0] == "super":
        cur = cur[:-1]
        segs = segs[1:]
    return "/".join(cur + segs[:-1]), segs[-1]


def parse_k8s_pb(root):
    messages = {}  # (pkg, struct) -> [field dict]
    for path in glob.glob(os.path.join(root, "src", "**", "mod.rs"), recursive=True):
        pkg = os.path.relpath(os.path.dirname(path), os.path.join(root, "src"))
        text = open(path, encoding="utf-8").read()
        text = "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))
        for m in re.finditer(r"pub struct (\w+) \{(\}|.*?\n\})", text, re.S):
            name, body = m.group(1), m.group(2)
            fields = []
            for a in re.finditer(r"#\[prost\((.*?)\)\]\s*pub (?:r#)?(\w+):\s*", body, re.S):
                attrs, fname = a.group(1), a.group(2)
                rtype, _ = read_type(body, a.end())
                tag = int(re.search(r'tag = "(\d+)"', attrs).group(1))
                f = {"tag": tag, "rust": fname, "card": "One"}
                mm = re.search(r'(?:btree_map|hash_map|map) = "string, (\w+)"', attrs)
                if mm:
                    f["card"] = "Map"
                    vt = mm.group(1)
                    if vt == "message":
                        inner = re.search(r"Map<[^,]+,(.+)>$", rtype).group(1)
                        f["type"] = ("message",) + resolve_path(pkg, inner)
                    else:
                        f["type"] = (vt,)
                else:
                    kind = attrs.split(",")[0].split("=")[0].strip()
                    if "repeated" in attrs:
                        f["card"] = "Repeated"
                    if kind == "message":
                        inner = re.search(r"(?:Option|Vec)<(.+)>$", rtype).group(1)
                        f["type"] = ("message",) + resolve_path(pkg, inner)
                    else:
                        f["type"] = (kind,)
                fields.append(f)
            messages[(pkg, name)] = fields
    return messages


# ---------------------------------------------------------------- Go types

def parse_go(go_src, pkg):
    """Go structs of one package: struct name -> {tag: field info} and declaration order."""
    structs = {}
    d = os.path.join(go_src, go_dir(pkg))
    for path in sorted(glob.glob(os.path.join(d, "*.go"))):
        base = os.path.basename(path)
        if base.endswith("_test.go") or base.startswith("zz_") or base == "generated.pb.go":
            continue
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"^type (\w+) struct ?\{(\}|\n.*?^\})", text, re.S | re.M):
            fields = []
            for line in m.group(2).split("\n"):
                line = line.strip()
                if line.startswith("//") or "`" not in line:
                    continue
                prefix, tags = line.split("`", 1)
                pm = re.search(r'protobuf:"(\w+),(\d+),', tags)
                if not pm:
                    continue
                jm = re.search(r'json:"([^"]*)"', tags)
                jparts = jm.group(1).split(",") if jm else [""]
                toks = prefix.split()
                gotype = toks[-1]
                fields.append({
                    "tag": int(pm.group(2)),
                    "json": jparts[0],
                    "omitempty": "omitempty" in jparts[1:] or "omitzero" in jparts[1:],
                    "inline": "inline" in jparts[1:],
                    "pointer": gotype.startswith("*"),
                    "gotype": gotype,
                })
            structs[m.group(1)] = fields
    return structs


# ---------------------------------------------------------------- k8s-openapi

def parse_openapi(root):
    """Definition name -> {normalized rust field name: json name}."""
    defs = {}
    for path in glob.glob(os.path.join(root, "**", "*.rs"), recursive=True):
        text = open(path, encoding="utf-8").read()
        m = re.match(r"// Generated from definition (\S+)", text)
        if not m:
            continue
        keys = dict((norm(k), j) for j, k in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text))
        defs[m.group(1)] = keys
    return defs


# ---------------------------------------------------------------- closure and output

class Gen:
    def __init__(self, pb, go_src, openapi):
        self.pb = pb
        self.go_src = go_src
        self.openapi = openapi
        self.go_cache = {}
        self.order = []  # (pkg, struct) in discovery order
        self.info = {}  # (pkg, struct) -> (go name, [rust field lines])
        self.problems = []
        self.newer = []  # fields newer than the k8s-openapi release: named by Go alone

    def go_structs(self, pkg):
        if pkg not in self.go_cache:
            self.go_cache[pkg] = parse_go(self.go_src, pkg)
        return self.go_cache[pkg]

    def variant(self, key):
        pkg, _ = key
        return rust_prefix(pkg) + self.info[key][0]

    def visit(self, key):
        if key in SPECIAL or key in self.info:
            return
        pkg, name = key
        if key not in self.pb:
            sys.exit(f"k8s-pb has no message {pkg}/{name}")
        go = {norm(k): (k, v) for k, v in self.go_structs(pkg).items()}
        if norm(name) not in go:
            sys.exit(f"no Go struct for {pkg}/{name}")
        go_name, go_fields = go[norm(name)]
        self.info[key] = (go_name, None)
        self.order.append(key)
        by_tag = {f["tag"]: f for f in self.pb[key]}
        oa = self.openapi.get(openapi_prefix(pkg) + go_name)
        rows = []
        for gf in go_fields:
            pf = by_tag.pop(gf["tag"], None)
            if pf is None:
                self.problems.append(f"{pkg}/{go_name}: Go field tag {gf['tag']} ({gf['json']}) missing in k8s-pb")
                continue
            if pf["type"][0] == "message":
                self.visit(pf["type"][1:])
            if gf["inline"]:
                rows.append(("inline", gf, pf))
                continue
            self.check_json_name(pkg, go_name, oa, pf, gf)
            rows.append(("field", gf, pf))
        for pf in by_tag.values():
            self.problems.append(f"{pkg}/{go_name}: k8s-pb field {pf['rust']} (tag {pf['tag']}) has no Go field")
        self.info[key] = (go_name, rows)

    def check_json_name(self, pkg, go_name, oa, pf, gf):
        if oa is None:
            return
        # k8s-openapi renames a few fields (`$ref` is `ref_path`): then the name must still exist.
        if gf["json"] in oa.values():
            return
        if norm(pf["rust"]) in oa:
            self.problems.append(
                f"{pkg}/{go_name}.{pf['rust']}: Go JSON name {gf['json']!r}, k8s-openapi {oa[norm(pf['rust'])]!r}")
        else:
            self.newer.append(f"{go_name}.{gf['json']}")

    def kind_expr(self, t):
        if t[0] == "message":
            key = t[1:]
            if key in SPECIAL:
                return SPECIAL[key]
            return f"Message(M::{self.variant(key)})"
        return SCALARS[t[0]]

    def field_line(self, row):
        what, gf, pf = row
        kind = self.kind_expr(pf["type"])
        if what == "inline":
            return f"inline({pf['tag']}, {kind})"
        ctor = {"One": "one", "Repeated": "rep", "Map": "map"}[pf["card"]]
        line = f'{ctor}({pf["tag"]}, "{gf["json"]}", {kind})'
        # Go writes non-pointer scalars even when zero; JSON drops them only under omitempty.
        scalar = pf["type"][0] in SCALARS and pf["card"] == "One"
        if scalar and (gf["pointer"] or not gf["omitempty"]):
            line += ".keep_zero()"
        return line

    def render(self):
        out = []
        out.append("// @generated by scripts/gen-proto-schema.py — do not edit by hand.")
        out.append(f"// Sources: k8s-pb {K8S_PB_VERSION} (tags, types), Go types at k8s.io/api {GO_RELEASE} (JSON")
        out.append("// names, omitempty, inline, pointers), k8s-openapi 0.26.1 v1_34 (JSON names, cross-check).")
        out.append("// Regenerate: python3 scripts/gen-proto-schema.py --go-src DIR (see the script's docstring).")
        out.append("//! The protobuf schema of every kind nodeless decodes: field tags to JSON names.")
        out.append("")
        out.append("use super::table::{inline, map, one, rep, Field, Kind::*};")
        out.append("")
        out.append("/// Every message reachable from [`KINDS`], except those decoded by hand (`Kind`'s specials).")
        out.append("#[derive(Debug, Clone, Copy, PartialEq, Eq)]")
        out.append("pub(crate) enum M {")
        for key in self.order:
            out.append(f"    {self.variant(key)},")
        out.append("}")
        out.append("")
        out.append("/// The kinds a protobuf body may carry: (apiVersion, kind, message); `*` is any apiVersion.")
        out.append("#[rustfmt::skip]")
        out.append("pub(crate) const KINDS: &[(&str, &str, M)] = &[")
        for api_version, kind, pkg, name in KINDS:
            out.append(f'    ("{api_version}", "{kind}", M::{self.variant((pkg, name))}),')
        out.append("];")
        out.append("")
        out.append("/// Indexed by `M as usize`: the message's protobuf name and fields in Go declaration order.")
        out.append("#[rustfmt::skip]")
        out.append(f"pub(crate) static MESSAGES: [(&str, &[Field]); {len(self.order)}] = [")
        for key in self.order:
            go_name, rows = self.info[key]
            out.append(f'    ("{proto_package(key[0])}.{go_name}", &[')
            for row in rows:
                out.append(f"        {self.field_line(row)},")
            out.append("    ]),")
        out.append("];")
        return "\n".join(out) + "\n"


def main():
    reg = os.path.expanduser("~/.cargo/registry/src")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--go-src", required=True)
    ap.add_argument("--k8s-pb", default=next(iter(glob.glob(f"{reg}/*/k8s-pb-{K8S_PB_VERSION}")), None))
    ap.add_argument("--k8s-openapi", default=next(iter(glob.glob(f"{reg}/*/k8s-openapi-0.26.1/src/v1_34")), None))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..",
                                                   "crates/nodeless-core/src/proto/schema.rs"))
    args = ap.parse_args()
    if not args.k8s_pb or not args.k8s_openapi:
        sys.exit("k8s-pb or k8s-openapi source not found; run `cargo fetch` first or pass the paths")
    gen = Gen(parse_k8s_pb(args.k8s_pb), args.go_src, parse_openapi(args.k8s_openapi))
    for _, _, pkg, name in KINDS:
        gen.visit((pkg, name))
    if gen.problems:
        sys.exit("schema sources disagree:\n  " + "\n  ".join(gen.problems))
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(gen.render())
    print(f"wrote {args.out}: {len(gen.order)} messages")
    if gen.newer:
        print("fields not in k8s-openapi (named from the Go types only): " + ", ".join(gen.newer))


if __name__ == "__main__":
    main()
