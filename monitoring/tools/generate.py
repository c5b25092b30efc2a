#!/usr/bin/python3
"""Generate kvmstatd's Grafana dashboards and the include profile from this
one source.

    monitoring/tools/generate.py          write monitoring/dashboards/*.json
                                          and monitoring/kvmstatd-include.ini
    monitoring/tools/generate.py --check  exit 1 if a committed file differs
                                          from what this script makes

The dashboards (Grafana's classic JSON model, schemaVersion 39):

- kvmstatd-fleet:  every host and VM of the chosen clusters, from the
  recording rules and the exporter-health series only, so that it works
  against a global Prometheus that federates just those;
- kvmstatd-host:   one or more hosts: per-VM exits, run delay and CPU, and
  the daemon's own poll and render cost;
- kvmstatd-vm:     one VM and its vCPUs: exits by reason, round trips, halt
  polling, page faults, interrupts, yields, huge pages, kvm_vm_info.

Every panel has a unit and a description; every rate() uses
$__rate_interval. Besides what Grafana reads, each panel here carries facts
for the tests (tests/integration/test_monitoring_*.py import this module):
which optional exporter features it needs and what values it returns.

The include profile lists exactly the metric families the dashboards and
the shipped rules read, as `[metrics] include` lines.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MONITORING = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import promql  # noqa: E402

OUT_DIR = os.path.join(MONITORING, "dashboards")
INCLUDE_FILE = os.path.join(MONITORING, "kvmstatd-include.ini")
RULE_FILES = [os.path.join(MONITORING, "rules", f)
              for f in ("kvmstatd-recording.rules.yml", "kvmstatd-alerts.rules.yml")]

SCHEMA_VERSION = 39
DS = {"type": "prometheus", "uid": "${datasource}"}

HOSTS = 'cluster=~"$cluster", job=~"$job"'
SEL = HOSTS + ', instance=~"$instance"'
VMSEL = SEL + ', vm=~"$vm"'
RI = "$__rate_interval"

# Optional exporter features a panel may need (tests skip such panels when
# the exporter runs without them, and expect no data then):
#   histograms  - [metrics] histograms = yes
#   bpf         - exit telemetry (kvm_vcpu_exits_by_reason, ..._userspace_exits, round trips)
#   hw_exits    - the hardware exit tracepoints fire (kvm_exit; not on every backend)
#   schedstat   - [daemon] bpf != off (run delay, thread CPU)
#   halt_poll   - the kernel halt-polls this VM's vCPUs (attempted polls > 0)
#   huge_pages  - the VM has mapped memory (pages_* > 0)
#   per_vcpu    - vcpu_series = per_vcpu (a vcpu label)


class Panel:
    """One Grafana panel; .targets are (expr, legend) pairs."""

    def __init__(self, kind, title, description, unit, targets, needs=(), ratio=False,
                 instant=False, w=12, h=8, fmt=None, options=None, custom=None, min_value=None,
                 max_value=None, may_be_empty=False, links=None):
        self.kind, self.title, self.description, self.unit = kind, title, description, unit
        self.targets = [(t, "") if isinstance(t, str) else t for t in targets]
        self.needs = set(needs)
        self.ratio = ratio            # every value in [0, 1]
        self.instant = instant
        self.w, self.h = w, h
        self.fmt = fmt
        self.options = options
        self.custom = custom
        self.min_value, self.max_value = min_value, max_value
        # data only when something rare happens (errors, drops): no data is fine
        self.may_be_empty = may_be_empty
        self.links = links

    def queries(self):
        return [e for e, _ in self.targets]

    def to_json(self, pid, x, y):
        defaults = {"unit": self.unit}
        if self.custom is not None:
            defaults["custom"] = self.custom
        if self.ratio:
            defaults["min"], defaults["max"] = 0, 1
        if self.min_value is not None:
            defaults["min"] = self.min_value
        if self.max_value is not None:
            defaults["max"] = self.max_value
        if self.links:
            defaults["links"] = self.links
        targets = []
        for i, (expr, legend) in enumerate(self.targets):
            t = {"datasource": DS, "refId": chr(ord("A") + i), "expr": expr,
                 "legendFormat": legend or "__auto", "range": not self.instant,
                 "instant": self.instant}
            if self.fmt:
                t["format"] = self.fmt
            targets.append(t)
        return {
            "id": pid, "type": self.kind, "title": self.title, "description": self.description,
            "datasource": DS, "gridPos": {"x": x, "y": y, "w": self.w, "h": self.h},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self.options if self.options is not None else default_options(self.kind),
            "targets": targets,
        }


def default_options(kind):
    legend = {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []}
    tooltip = {"mode": "multi", "sort": "desc"}
    if kind == "timeseries":
        return {"legend": legend, "tooltip": tooltip}
    if kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "auto", "colorMode": "value", "graphMode": "area",
                "justifyMode": "auto", "textMode": "auto", "wideLayout": True,
                "showPercentChange": False, "percentChangeColorMode": "standard"}
    if kind == "table":
        return {"showHeader": True, "cellHeight": "sm", "frameIndex": 0}
    if kind == "heatmap":
        return {"calculate": False, "yAxis": {"axisPlacement": "left", "unit": "s"},
                "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange",
                          "scale": "exponential", "exponent": 0.5, "steps": 64,
                          "reverse": False},
                "cellGap": 1, "rowsFrame": {"layout": "auto"},
                "legend": {"show": True}, "tooltip": {"mode": "single", "yHistogram": False,
                                                      "showColorScale": False},
                "filterValues": {"le": 1e-9}, "showValue": "auto",
                "exemplars": {"color": "rgba(255,0,255,0.7)"}}
    raise ValueError(kind)


def ts(title, description, unit, targets, **kw):
    return Panel("timeseries", title, description, unit, targets, **kw)


def stat(title, description, unit, expr, **kw):
    kw.setdefault("w", 4)
    kw.setdefault("h", 4)
    return Panel("stat", title, description, unit, [expr], **kw)


def table(title, description, unit, expr, **kw):
    kw.setdefault("instant", True)
    kw.setdefault("fmt", "table")
    return Panel("table", title, description, unit, [expr], **kw)


def heatmap(title, description, expr, **kw):
    kw.setdefault("fmt", "heatmap")
    return Panel("heatmap", title, description, "s", [(expr, "{{le}}")], **kw)


class Row:
    def __init__(self, title, panels):
        self.title, self.panels = title, panels


# Drill-down: a click on a VM opens the VM dashboard for it, on its host,
# keeping the time range and the data source.
def vm_link(source):
    """source: "table" (a table's columns) or "series" (a series' labels)."""
    f = "${__data.fields.%s}" if source == "table" else "${__field.labels.%s}"
    url = ("/d/kvmstatd-vm/kvmstatd-vm?${datasource:queryparam}&var-instance=%s&var-vm=%s"
           "&${__url_time_range}" % (f % "instance", f % "vm"))
    return [{"title": "Open VM %s" % (f % "vm"), "url": url, "targetBlank": False}]


# ------------------------------------------------------------------ variables

def variables(with_vm, vm_source):
    def query_var(name, label, query, multi=True, include_all=True, all_value=".*"):
        v = {"name": name, "label": label, "type": "query", "datasource": DS,
             "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery",
                       "qryType": 1},
             "refresh": 2, "sort": 1, "multi": multi,
             "includeAll": include_all, "options": [], "hide": 0, "regex": ""}
        if include_all:
            v["allValue"] = all_value
        return v
    out = [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "options": [], "hide": 0, "refresh": 1,
         "regex": ""},
        # no cluster label at all: "All" (.*) matches the empty value too
        query_var("cluster", "Cluster", "label_values(kvmstatd_build_info, cluster)"),
        query_var("job", "Job", 'label_values(kvmstatd_build_info{cluster=~"$cluster"}, job)'),
        query_var("instance", "Host",
                  'label_values(kvmstatd_build_info{cluster=~"$cluster", job=~"$job"}, instance)'),
    ]
    if with_vm:
        out.append(query_var("vm", "VM", "label_values(%s{%s}, vm)" % (vm_source, SEL),
                             multi=with_vm == "multi", include_all=with_vm == "multi"))
    return out


# ------------------------------------------------------------------ dashboards

def fleet():
    hosts = [
        stat("Hosts exporting", "kvmstatd instances that answer scrapes "
             "(kvmstatd_build_info is on every page).", "none",
             "count(kvmstatd_build_info{%s})" % SEL),
        stat("Hosts down", "Scrape targets of the selected jobs that failed their last "
             "scrape (up == 0). See the KvmstatdTargetDown runbook.", "none",
             "count(up{%s} == 0) or vector(0)" % SEL),
        stat("VMs", "VM stats fds polled, over the selected hosts (kvmstatd_sources{kind=\"vm\"}).",
             "none", 'sum(kvmstatd_sources{%s, kind="vm"})' % SEL),
        stat("vCPUs", "vCPU stats fds polled, over the selected hosts.", "none",
             'sum(kvmstatd_sources{%s, kind="vcpu"})' % SEL),
        stat("Exits per second", "Exits from guest mode to KVM over every VM of the selected "
             "hosts (recording rule instance:kvm_vcpu_exits:rate5m).", "ops",
             "sum(instance:kvm_vcpu_exits:rate5m{%s})" % SEL),
        stat("Worst host CPU contention", "The highest share of runnable time the vCPU "
             "threads of one host spent waiting for a CPU (instance:kvm_vcpu_run_delay:ratio5m).",
             "percentunit", "max(instance:kvm_vcpu_run_delay:ratio5m{%s})" % SEL,
             ratio=True, needs={"schedstat"}),
    ]
    top = [
        table("Top VMs by CPU contention", "The 10 VMs, over all selected hosts, whose vCPU "
              "threads waited longest for a CPU, as a share of the time they wanted one "
              "(vm:kvm_vcpu_run_delay:ratio5m). A VM name is unique only per host: the host "
              "column tells them apart.", "percentunit",
              "topk(10, vm:kvm_vcpu_run_delay:ratio5m{%s})" % SEL, ratio=True,
              needs={"schedstat"}, links=vm_link("table")),
        table("Top VMs by exit rate", "The 10 VMs with the most exits from guest mode per "
              "second (vm:kvm_vcpu_exits:rate5m).", "ops",
              "topk(10, vm:kvm_vcpu_exits:rate5m{%s})" % SEL, links=vm_link("table")),
    ]
    exits = [
        ts("Hardware exits by reason", "Exits from guest mode by the CPU's exit reason, "
           "summed over the selected hosts' VMs (exit telemetry; VMX or SVM reason names).",
           "ops", [("sum by (reason) (vm_reason:kvm_vcpu_exits_by_reason:rate5m{%s})" % SEL,
                    "{{reason}}")], needs={"bpf", "hw_exits"}),
        ts("Exits to the VMM by reason", "Returns of KVM_RUN to the VMM (userspace exits) by "
           "KVM_EXIT_* reason, over the selected hosts' VMs.", "ops",
           [("sum by (reason) (vm_reason:kvm_vcpu_userspace_exits:rate5m{%s})" % SEL,
             "{{reason}}")], needs={"bpf"}),
        ts("CPU contention per host", "Per host, the share of their runnable time the vCPU "
           "threads waited on a run queue (instance:kvm_vcpu_run_delay:ratio5m): the "
           "noisy-neighbour signal. KvmHostCpuOvercommit fires above 5 %.", "percentunit",
           [("instance:kvm_vcpu_run_delay:ratio5m{%s}" % SEL, "{{instance}}")], ratio=True,
           needs={"schedstat"}),
        ts("vCPU CPU per host", "CPU time of all vCPU threads per host, in CPUs "
           "(instance:kvm_vcpu_thread_cpu_seconds:rate5m).", "short",
           [("instance:kvm_vcpu_thread_cpu_seconds:rate5m{%s}" % SEL, "{{instance}}")],
           needs={"schedstat"}),
    ]
    health = [
        ts("Targets up", "1 while Prometheus scrapes the host's kvmstatd, 0 when a scrape "
           "fails.", "none", [("up{%s}" % SEL, "{{instance}}")], min_value=0, max_value=1),
        ts("Poll tick duration", "Wall time of each host's last poll tick "
           "(kvmstatd_last_poll_duration_seconds); it should stay well under [poll] "
           "interval_ms.", "s",
           [("kvmstatd_last_poll_duration_seconds{%s}" % SEL, "{{instance}}")]),
        ts("Exporter problems", "Missed poll ticks, failed stats-fd reads, series dropped at "
           "max_series, refused registrations and worker restarts per second, by host. All "
           "should be zero; each has an alert and a runbook.", "ops", [
               ("sum by (instance) (rate(kvmstatd_poll_missed_ticks_total{%s}[%s]))" % (SEL, RI),
                "missed ticks {{instance}}"),
               ("sum by (instance) (rate(kvmstatd_read_errors_total{%s}[%s]))" % (SEL, RI),
                "read errors {{instance}}"),
               ("sum by (instance) (rate(kvmstatd_series_dropped_total{%s}[%s]))" % (SEL, RI),
                "series dropped {{instance}}"),
               ("sum by (instance, reason) (rate(kvmstatd_registrations_rejected_total{%s}[%s]))"
                % (SEL, RI), "rejected {{reason}} {{instance}}"),
               ("sum by (instance) (rate(kvmstatd_worker_restarts_total{%s}[%s]))" % (SEL, RI),
                "worker restarts {{instance}}"),
           ], may_be_empty=True),
        ts("Series per host", "KVM sample lines on each host's page "
           "(kvmstatd_series), against the cap (kvmstatd_series_limit, 0: none).", "short", [
               ("kvmstatd_series{%s}" % SEL, "{{instance}}"),
               ("kvmstatd_series_limit{%s} > 0" % SEL, "limit {{instance}}"),
           ]),
    ]
    return dashboard("kvmstatd-fleet", "kvmstatd / Fleet overview",
                     "Every KVM host and VM kvmstatd watches: sizes, the most contended and "
                     "busiest VMs, exits by reason and the exporters' health. Reads only "
                     "recording rules and exporter-health series, so it works on a "
                     "federating Prometheus.",
                     [Row("Fleet", hosts), Row("Top VMs", top), Row("Exits and contention", exits),
                      Row("Exporter health", health)],
                     variables("multi", "vm:kvm_vcpu_exits:rate5m"))


def host():
    by_vm = "sum by (instance, vm) (rate(%s{%s}[%s]))"
    summary = [
        stat("VMs", "VMs kvmstatd polls on the selected hosts.", "none",
             'sum(kvmstatd_sources{%s, kind="vm"})' % SEL),
        stat("vCPUs", "vCPUs kvmstatd polls on the selected hosts.", "none",
             'sum(kvmstatd_sources{%s, kind="vcpu"})' % SEL),
        stat("Exit telemetry", "1 when the worker reads the BPF exit telemetry "
             "(kvmstatd_bpf_enabled), 0 when it is off or could not load.", "bool_on_off",
             "min(kvmstatd_bpf_enabled{%s})" % SEL),
        stat("Series on the page", "KVM sample lines on the selected hosts' pages "
             "(kvmstatd_series).", "short", "sum(kvmstatd_series{%s})" % SEL),
        table("kvmstatd version", "kvmstatd_build_info per host.", "none",
              "kvmstatd_build_info{%s}" % SEL, w=8, h=4),
    ]
    vms = [
        ts("Exits per VM", "Exits from guest mode to KVM per second, per VM "
           "(kvm_vcpu_exits_total summed over vCPUs).", "ops",
           [(by_vm % ("kvm_vcpu_exits_total", SEL, RI), "{{vm}} {{instance}}")],
           links=vm_link("series")),
        ts("Exits to the VMM per VM", "Exits that KVM hands to the VMM in userspace per second, "
           "per VM: port I/O, MMIO, and (exit telemetry) every return of KVM_RUN.", "ops", [
               ("sum by (instance, vm) (rate(kvm_vcpu_io_exits_total{%s}[%s]) + "
                "rate(kvm_vcpu_mmio_exits_total{%s}[%s]))" % (SEL, RI, SEL, RI),
                "io+mmio {{vm}} {{instance}}"),
           ]),
        ts("Run delay per VM", "Time the VM's vCPU threads waited on a run queue, in CPUs "
           "(seconds per second): what the guest loses to contention.", "short",
           [(by_vm % ("kvm_vcpu_run_delay_seconds_total", SEL, RI), "{{vm}} {{instance}}")],
           needs={"schedstat"}),
        ts("vCPU CPU per VM", "CPU time of the VM's vCPU threads, in CPUs.", "short",
           [(by_vm % ("kvm_vcpu_thread_cpu_seconds_total", SEL, RI), "{{vm}} {{instance}}")],
           needs={"schedstat"}),
        ts("CPU contention per VM", "Share of the time the VM's vCPU threads wanted a CPU "
           "that they spent waiting for one. KvmVmCpuContention fires above 10 %.",
           "percentunit", [(
               "sum by (instance, vm) (rate(kvm_vcpu_run_delay_seconds_total{%s}[%s])) / "
               "((sum by (instance, vm) (rate(kvm_vcpu_run_delay_seconds_total{%s}[%s])) + "
               "sum by (instance, vm) (rate(kvm_vcpu_thread_cpu_seconds_total{%s}[%s]))) > 0)"
               % (SEL, RI, SEL, RI, SEL, RI), "{{vm}} {{instance}}")],
           ratio=True, needs={"schedstat"}, links=vm_link("series")),
        ts("Hardware exits by reason", "Exits from guest mode by hardware exit reason on the "
           "selected hosts (exit telemetry).", "ops",
           [("sum by (reason) (rate(kvm_vcpu_exits_by_reason_total{%s}[%s]))" % (SEL, RI),
             "{{reason}}")], needs={"bpf", "hw_exits"}),
    ]
    daemon = [
        ts("Poll tick", "Wall and CPU time of kvmstatd's last poll tick. The wall time well "
           "above the CPU time means the worker waits for a CPU.", "s", [
               ("kvmstatd_last_poll_duration_seconds{%s}" % SEL, "wall {{instance}}"),
               ("kvmstatd_last_poll_cpu_seconds{%s}" % SEL, "CPU {{instance}}"),
           ]),
        ts("Polling cost", "CPU time kvmstatd spends polling, in CPUs, and poll ticks per "
           "second.", "short", [
               ("rate(kvmstatd_poll_cpu_seconds_total{%s}[%s])" % (SEL, RI), "CPU {{instance}}"),
               ("rate(kvmstatd_polls_total{%s}[%s])" % (SEL, RI), "ticks/s {{instance}}"),
           ]),
        ts("Render and scrape time", "Average time to render a page, to compress one, and "
           "from request to page, per operation.", "s", [
               ("rate(kvmstatd_render_duration_seconds_total{%s}[%s]) / "
                "(rate(kvmstatd_renders_total{%s}[%s]) > 0)" % (SEL, RI, SEL, RI),
                "render {{instance}}"),
               ("rate(kvmstatd_compress_duration_seconds_total{%s}[%s]) / "
                "(rate(kvmstatd_compressions_total{%s}[%s]) > 0)" % (SEL, RI, SEL, RI),
                "compress {{instance}}"),
               ("rate(kvmstatd_scrape_duration_seconds_total{%s}[%s]) / "
                "(rate(kvmstatd_scrapes_total{%s}[%s]) > 0)" % (SEL, RI, SEL, RI),
                "scrape {{instance}}"),
           ]),
        ts("Missed ticks and read errors", "Poll ticks lost to a slow poll and failed "
           "stats-fd reads per second; both should be zero.", "ops", [
               ("rate(kvmstatd_poll_missed_ticks_total{%s}[%s])" % (SEL, RI),
                "missed ticks {{instance}}"),
               ("rate(kvmstatd_read_errors_total{%s}[%s])" % (SEL, RI),
                "read errors {{instance}}"),
           ]),
    ]
    return dashboard("kvmstatd-host", "kvmstatd / Host",
                     "One or more KVM hosts: exits, run delay and CPU per VM, and what "
                     "kvmstatd itself costs.",
                     [Row("Host", summary), Row("VMs", vms), Row("kvmstatd", daemon)],
                     variables("multi", "kvm_vm_info"))


def vm():
    def r(metric):
        return "sum(rate(%s{%s}[%s]))" % (metric, VMSEL, RI)
    info = [
        table("VM", "kvm_vm_info: the VM's kernel id, its VMM's pid and command, and how "
              "kvmstatd found it (registered, discovered, borrowed).", "none",
              "kvm_vm_info{%s}" % VMSEL, w=24, h=4),
    ]
    exits = [
        ts("Exits per vCPU", "Exits from guest mode to KVM per second, per vCPU (one line "
           "for the VM under vcpu_series = per_vm).", "ops",
           [("sum by (vcpu) (rate(kvm_vcpu_exits_total{%s}[%s]))" % (VMSEL, RI),
             "vCPU {{vcpu}}")]),
        ts("Exits by kind", "KVM's own exit counters for the VM: port I/O, MMIO, HLT, "
           "external interrupts, signals.", "ops", [
               (r("kvm_vcpu_io_exits_total"), "io"),
               (r("kvm_vcpu_mmio_exits_total"), "mmio"),
               (r("kvm_vcpu_halt_exits_total"), "hlt"),
               (r("kvm_vcpu_irq_exits_total"), "external interrupt"),
               (r("kvm_vcpu_signal_exits_total"), "signal"),
           ]),
        ts("Hardware exits by reason", "Exits from guest mode by the CPU's exit reason "
           "(exit telemetry).", "ops",
           [("sum by (reason) (rate(kvm_vcpu_exits_by_reason_total{%s}[%s]))" % (VMSEL, RI),
             "{{reason}}")], needs={"bpf", "hw_exits"}),
        ts("Exits to the VMM by reason", "Returns of KVM_RUN to the VMM by KVM_EXIT_* reason "
           "(exit telemetry).", "ops",
           [("sum by (reason) (rate(kvm_vcpu_userspace_exits_total{%s}[%s]))" % (VMSEL, RI),
             "{{reason}}")], needs={"bpf"}),
        ts("Exit round trip p99", "99th percentile of the time from an exit to the next "
           "entry into the guest, by kind (userspace: exit to the VMM until its next KVM_RUN; "
           "hardware: kvm_exit to kvm_entry) and reason, from the exit telemetry's "
           "histogram. HLT exits to the VMM wait by design.", "s",
           [("histogram_quantile(0.99, sum by (kind, reason, le) "
             "(rate(kvm_vcpu_exit_roundtrip_seconds_bucket{%s}[%s])))" % (VMSEL, RI),
             "{{kind}} {{reason}}")], needs={"bpf", "histograms"}),
    ]
    halt = [
        heatmap("Halt wait", "How long the VM's vCPUs slept in HLT before a wake-up "
                "(kvm_vcpu_halt_wait_seconds buckets per second, summed over vCPUs).",
                "sum by (le) (rate(kvm_vcpu_halt_wait_seconds_bucket{%s}[%s]))" % (VMSEL, RI),
                needs={"histograms"}),
        ts("Halt-poll hit rate", "Share of attempted halt polls that found a wake-up before "
           "the poll window ended. Low with much polling time: see KvmVmHaltPollWaste.",
           "percentunit",
           [("%s / (%s > 0)" % (r("kvm_vcpu_halt_successful_poll_total"),
                                r("kvm_vcpu_halt_attempted_poll_total")), "hit rate")],
           ratio=True, needs={"halt_poll"}),
        ts("Halt-poll time", "CPU time spent halt-polling, in CPUs: polls that found a "
           "wake-up and polls that did not (wasted).", "short", [
               ("sum(rate(kvm_vcpu_halt_poll_success_seconds_sum{%s}[%s]) or "
                "rate(kvm_vcpu_halt_poll_success_seconds_total{%s}[%s]))" % (VMSEL, RI, VMSEL, RI),
                "successful"),
               ("sum(rate(kvm_vcpu_halt_poll_fail_seconds_sum{%s}[%s]) or "
                "rate(kvm_vcpu_halt_poll_fail_seconds_total{%s}[%s]))" % (VMSEL, RI, VMSEL, RI),
                "failed"),
           ]),
        ts("Run delay and CPU per vCPU", "Per vCPU thread, time waiting on a run queue and "
           "time running, in CPUs (schedstat).", "short", [
               ("sum by (vcpu) (rate(kvm_vcpu_run_delay_seconds_total{%s}[%s]))" % (VMSEL, RI),
                "wait vCPU {{vcpu}}"),
               ("sum by (vcpu) (rate(kvm_vcpu_thread_cpu_seconds_total{%s}[%s]))" % (VMSEL, RI),
                "run vCPU {{vcpu}}"),
           ], needs={"schedstat"}),
    ]
    mmu = [
        ts("Page faults", "KVM page faults per second: taken, fixed by KVM's MMU, fixed on "
           "the fast path, needing emulation, spurious, injected into the guest.", "ops", [
               (r("kvm_vcpu_pf_taken_total"), "taken"),
               (r("kvm_vcpu_pf_fixed_total"), "fixed"),
               (r("kvm_vcpu_pf_fast_total"), "fast"),
               (r("kvm_vcpu_pf_emulate_total"), "emulate"),
               (r("kvm_vcpu_pf_spurious_total"), "spurious"),
               (r("kvm_vcpu_pf_guest_total"), "guest"),
           ]),
        ts("Interrupts: injections and window exits", "Interrupts and NMIs injected into "
           "the guest per second, against the exits KVM needs to open an interrupt or NMI "
           "window (many window exits per injection: the guest runs with interrupts off "
           "a lot).", "ops", [
               (r("kvm_vcpu_irq_injections_total"), "IRQ injections"),
               (r("kvm_vcpu_irq_window_exits_total"), "IRQ window exits"),
               (r("kvm_vcpu_nmi_injections_total"), "NMI injections"),
               (r("kvm_vcpu_nmi_window_exits_total"), "NMI window exits"),
           ]),
        ts("Directed yields", "Yields KVM attempted on behalf of a vCPU spinning on a lock "
           "(pause-loop exiting) and those that reached another vCPU: lock-holder "
           "preemption, worse under contention.", "ops", [
               (r("kvm_vcpu_directed_yield_attempted_total"), "attempted"),
               (r("kvm_vcpu_directed_yield_successful_total"), "successful"),
           ]),
        ts("Huge-page share", "Share of the guest memory KVM maps with 2 MiB or 1 GiB pages "
           "(kvm_vm_pages_*). Low shares mean more TLB misses.", "percentunit", [(
               "(sum(kvm_vm_pages_2m{%s}) * 2097152 + sum(kvm_vm_pages_1g{%s}) * 1073741824) / "
               "((sum(kvm_vm_pages_4k{%s}) * 4096 + sum(kvm_vm_pages_2m{%s}) * 2097152 + "
               "sum(kvm_vm_pages_1g{%s}) * 1073741824) > 0)"
               % (VMSEL, VMSEL, VMSEL, VMSEL, VMSEL), "huge pages")],
           ratio=True, needs={"huge_pages"}),
        ts("Guest memory mapped, by page size", "Guest memory KVM currently maps with each "
           "page size.", "bytes", [
               ("sum(kvm_vm_pages_4k{%s}) * 4096" % VMSEL, "4 KiB"),
               ("sum(kvm_vm_pages_2m{%s}) * 2097152" % VMSEL, "2 MiB"),
               ("sum(kvm_vm_pages_1g{%s}) * 1073741824" % VMSEL, "1 GiB"),
           ]),
        ts("TLB flushes", "TLB flushes requested per vCPU and remote flushes for the whole VM "
           "per second.", "ops", [
               (r("kvm_vcpu_tlb_flush_total"), "vCPU"),
               (r("kvm_vm_remote_tlb_flush_total"), "remote (VM)"),
           ]),
        ts("Emulation", "Instructions KVM emulated, and failed to emulate (see "
           "KvmVmEmulationFailures), per second.", "ops", [
               (r("kvm_vcpu_insn_emulation_total"), "emulated"),
               (r("kvm_vcpu_insn_emulation_fail_total"), "failed"),
           ]),
    ]
    return dashboard("kvmstatd-vm", "kvmstatd / VM",
                     "One VM and its vCPUs: exits and why, what they cost, halt polling, "
                     "page faults, interrupts, yields and huge pages.",
                     [Row("VM", info), Row("Exits", exits), Row("Halting and CPU", halt),
                      Row("Memory, interrupts, emulation", mmu)],
                     variables("single", "kvm_vm_info"))


class Dashboard:
    def __init__(self, uid, title, description, rows, templating):
        self.uid, self.title, self.description = uid, title, description
        self.rows, self.templating = rows, templating

    def panels(self):
        return [p for r in self.rows for p in r.panels]

    def to_json(self):
        out, pid, y = [], 1, 0
        for row in self.rows:
            out.append({"id": pid, "type": "row", "title": row.title, "collapsed": False,
                        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
            pid, y, x, rowh = pid + 1, y + 1, 0, 0
            for p in row.panels:
                if x + p.w > 24:
                    x, y, rowh = 0, y + rowh, 0
                out.append(p.to_json(pid, x, y))
                pid, x, rowh = pid + 1, x + p.w, max(rowh, p.h)
            y += rowh
        links = [{"title": "kvmstatd", "type": "dashboards", "tags": ["kvmstatd"],
                  "asDropdown": True, "includeVars": True, "keepTime": True, "icon": "external link",
                  "targetBlank": False, "tooltip": "", "url": ""}]
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["kvmstatd", "kvm"], "editable": True, "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "timezone": "browser",
            "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
            "timepicker": {}, "links": links,
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts", "type": "dashboard"}]},
            "templating": {"list": self.templating},
            "panels": out,
        }


def dashboard(uid, title, description, rows, templating):
    return Dashboard(uid, title, description, rows, templating)


def dashboards():
    return [fleet(), host(), vm()]


# ------------------------------------------------------------ include profile

def rule_exprs():
    """The expressions of the shipped rules (a tiny YAML reader would do, but
    the files are ours: every expr is `expr: ...` or an `expr: |` block)."""
    exprs = []
    for path in RULE_FILES:
        lines = open(path).read().splitlines()
        i = 0
        while i < len(lines):
            s = lines[i].strip()
            if s.startswith("expr:"):
                rest = s[len("expr:"):].strip()
                if rest in ("|", ">", "|-", ">-"):
                    indent = len(lines[i]) - len(lines[i].lstrip())
                    block = []
                    i += 1
                    while i < len(lines) and (not lines[i].strip() or
                                              len(lines[i]) - len(lines[i].lstrip()) > indent):
                        block.append(lines[i].strip())
                        i += 1
                    exprs.append(" ".join(block))
                    continue
                exprs.append(rest)
            i += 1
    return exprs


def recorded_names():
    names = set()
    for path in RULE_FILES:
        for line in open(path):
            s = line.strip()
            if s.startswith("- record:"):
                names.add(s.split(":", 1)[1].strip())
    return names


VAR_VALUES = {"cluster": ".*", "job": ".*", "instance": ".*", "vm": ".*",
              "__rate_interval": "1m", "__interval": "1m", "__range": "1h",
              "datasource": "prometheus"}


def used_metrics():
    """Every metric name the dashboards' queries and variables and the rules read."""
    names = set()
    for d in dashboards():
        for p in d.panels():
            for q in p.queries():
                names |= promql.metric_names(promql.substitute(q, VAR_VALUES))
        for v in d.templating:
            if v["type"] == "query":
                q = v["query"]["query"]
                inner = q[q.index("(") + 1:q.rindex(",")]
                names |= promql.metric_names(promql.substitute(inner, VAR_VALUES))
    for e in rule_exprs():
        names |= promql.metric_names(e)
    return names


SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_info")


def kvm_family(name):
    """The family a KVM or exit-telemetry sample name belongs to, as
    [metrics] include matches it (histograms and counters by family name)."""
    for s in SUFFIXES:
        if name.endswith(s):
            return name[:-len(s)]
    return name


def include_profile():
    fams = sorted({kvm_family(n) for n in used_metrics()
                   if n.startswith("kvm_") and n != "kvm_vm_info"})
    lines = [
        "; kvmstatd include profile: only the metric families kvmstatd's shipped",
        "; dashboards and rules read (generated by monitoring/tools/generate.py;",
        "; do not edit). Paste these lines into the [metrics] section of",
        "; kvmstatd.ini. kvm_vm_info and the kvmstatd_* metrics are always",
        "; exported; histograms match by family name, and their _total twins",
        "; under `histograms = no` as well.",
        "[metrics]",
    ]
    # one family per line: the 200-byte line limit, and easy diffs
    lines += ["include = %s" % f for f in fams]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- main

def outputs():
    out = {}
    for d in dashboards():
        out[os.path.join(OUT_DIR, d.uid + ".json")] = json.dumps(d.to_json(), indent=2,
                                                                  sort_keys=True) + "\n"
    out[INCLUDE_FILE] = include_profile()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="fail if a committed file is not what this script generates")
    args = ap.parse_args()
    stale = []
    for path, text in outputs().items():
        try:
            with open(path) as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        if old == text:
            continue
        if args.check:
            stale.append(os.path.relpath(path, os.path.dirname(MONITORING)))
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            print("wrote", os.path.relpath(path))
    if stale:
        print("generate.py --check: stale (run monitoring/tools/generate.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
