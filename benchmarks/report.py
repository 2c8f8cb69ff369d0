"""Markdown tables from a results document."""

from __future__ import annotations

from typing import Any

from .harness import numpy_blas


def _fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} us"


def _fmt_val(v: Any) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def workload_table(res: dict[str, Any]) -> str:
    keys: list[str] = []
    for imp in res["impls"].values():
        for k in list(imp["result"]) + list(imp.get("extra", {})):
            if k not in keys:
                keys.append(k)
    head = ["implementation", "median", "min - max", "per step", "faults/step"] + keys
    lines = [
        f"**{res['title']}** ({res['repeats']} rounds, {res['steps']} steps each)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for imp in res["impls"].values():
        vals = {**imp["result"], **imp.get("extra", {})}
        per = imp["per_step_us"]
        per_s = "" if per is None else (f"{per:.1f} us" if per < 1000 else f"{per / 1000:.2f} ms")
        row = [
            imp["label"],
            _fmt_time(imp["median_s"]),
            f"{_fmt_time(imp['min_s'])} - {_fmt_time(imp['max_s'])}",
            per_s,
            f"{imp['minor_faults_per_step']:.1f}",
        ]
        row += [_fmt_val(vals[k]) if k in vals else "" for k in keys]
        lines.append("| " + " | ".join(row) + " |")
    if res["comparisons"]:
        lines += ["", "| ratio (paired, per round) | median | min - max | target | |", "|---|---:|---:|---:|---|"]
        for c in res["comparisons"]:
            lines.append("| " + " | ".join(_comparison_cells(c)) + " |")
    for note in res.get("notes", []):
        lines += ["", note]
    return "\n".join(lines)


def _comparison_cells(c: dict[str, Any]) -> list[str]:
    target = "" if c["target"] is None else f"<= {c['target']:g}"
    status = "" if c["met"] is None else ("met" if c["met"] else f"MISSED by {(c['median'] / c['target'] - 1) * 100:.0f}%")
    return [f"{c['what']} (`{c['num']}` / `{c['den']}`)", f"{c['median']:.3f}", f"{c['min']:.3f} - {c['max']:.3f}", target, status]


def targets_table(doc: dict[str, Any]) -> str:
    lines = ["| workload | target | median ratio | min - max | |", "|---|---|---:|---:|---|"]
    for res in doc["workloads"]:
        for c in res["comparisons"]:
            if c["target"] is None:
                continue
            cells = _comparison_cells(c)
            lines.append(f"| {res['name']} | {c['what']} <= {c['target']:g} | {cells[1]} | {cells[2]} | {cells[4]} |")
        for t in res.get("targets", []):
            status = "met" if t["met"] else f"MISSED ({t['distance']})"
            lines.append(f"| {res['name']} | {t['what']} | {t['value']} | {t.get('range', '')} | {status} |")
    return "\n".join(lines)


def machine_section(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items())
    vers = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"- Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m.get('usable_cpus')} usable), "
        f"{m.get('mem_total_gib')} GiB RAM; {m['platform']}; Python {m['python']}",
        f"- NumPy BLAS (threadpoolctl): {numpy_blas(m)}",
    ]
    others = [
        f"{p.get('internal_api')} {p.get('num_threads')} threads ({p.get('library')})"
        for p in m.get("threadpools", [])
        if p.get("user_api") == "openmp"
    ]
    if others:
        lines.append(f"- OpenMP pools loaded: {'; '.join(others)}")
    if "torch_threads" in m:
        lines.append(f"- torch: {m['torch_threads']} intra-op threads, BLAS {m.get('torch_blas')}")
    if "cupy_device" in m or "torch_cuda_device" in m:
        lines.append(f"- GPU: {m.get('cupy_device') or m.get('torch_cuda_device')}")
    lines += [f"- Environment: {env}", f"- Versions: {vers}", f"- xpnet commit: {m.get('git_commit')}"]
    lines.append(f"- Command: `{doc['command'].strip()}` ({doc['repeats']} rounds, {doc['wall_s']} s, {doc['when']})")
    return "\n".join(lines)


def markdown(doc: dict[str, Any]) -> str:
    parts = ["## Results", "", machine_section(doc), "", "### Targets", "", targets_table(doc)]
    for res in doc["workloads"]:
        parts += ["", f"### {res['name']}", "", workload_table(res)]
    for name, why in doc.get("skipped", {}).items():
        parts += ["", f"### {name}", "", f"Skipped: {why}"]
    return "\n".join(parts) + "\n"
