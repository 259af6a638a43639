//! The docs are the contract: `docs/abi.md`, `docs/remap-ipc.md` and `docs/vmm-interface.md`
//! must be enough to write a guest or a VMM build without reading the code. This test reads
//! their tables and checks them against this crate, so the two cannot drift.
//!
//! # The convention
//!
//! A checked table follows an HTML comment (invisible when rendered) on its own line, then
//! optional blank lines, then an ordinary Markdown table. Columns are found by their header
//! name (case-insensitive, in any order; other columns are free text). A cell's value is its
//! first code span (`` `...` ``), or the whole cell without one. Numbers are decimal or `0x`
//! hex, with `_` or `,` separators allowed.
//!
//! | marker | required columns | checked against |
//! |---|---|---|
//! | `<!-- layout: Struct size=N -->` | Offset, Size, Type, Field | every field of the `#[repr(C)]` struct: the set of names, `offset_of!`, `size_of`, the type; N = `size_of::<Struct>()` |
//! | `<!-- constants -->` | Name, Value | the constant `module::NAME` (root items without a module) |
//! | `<!-- magics -->` | Name, Value, ASCII, Bytes | the constant, its ASCII string read little endian, its bytes in memory order |
//! | `<!-- statuses: IpcStatus -->` (or `Status`, `TxStatus`) | Value, Name | every status of the enum, each once |
//! | `<!-- registers: pageflip -->` (or `virtio`) | Offset, Name | every register offset constant, each once |
//! | `<!-- params: ipc_workloads -->` | Index, Name | the parameter index constants of `probes::ipc_workloads` |
//!
//! The lists below name every `#[repr(C)]` struct and every top-level `pub const` of the ABI
//! modules; the test also scans the sources, so a new struct or constant fails here until it
//! has its row in the docs (and its entry here).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pageflip_abi::ipc::{self, Extent, IpcHeader, PostEntry, RecvEntry, SendDesc, IPC_STATUSES};
use pageflip_abi::mmio::{self, Status};
use pageflip_abi::probes::ipc_workloads;
use pageflip_abi::shmem::{self, RingControl, SlotHeader};
use pageflip_abi::virtio::{self, DgramConfig, DgramHeader, TxStatus};
use pageflip_abi::{BootInfo, ResultRecord, SampleDesc};

/// The contract's documents, relative to the workspace root.
const DOCS: [&str; 3] = ["docs/abi.md", "docs/remap-ipc.md", "docs/vmm-interface.md"];

/// The ABI modules whose top-level `pub const`s must all be documented, with the path prefix
/// their items have in the docs' Name columns.
const SOURCES: [(&str, &str); 7] = [
    ("src/lib.rs", ""),
    ("src/layout.rs", ""),
    ("src/records.rs", ""),
    ("src/mmio.rs", "mmio::"),
    ("src/ipc.rs", "ipc::"),
    ("src/shmem.rs", "shmem::"),
    ("src/virtio.rs", "virtio::"),
];

/// Top-level constants that have a table of their own rather than a constants row.
const COVERED_ELSEWHERE: [(&str, &str); 1] = [("ipc::IPC_STATUSES", "the IpcStatus table")];

// ---------------------------------------------------------------------------------------
// What the crate says
// ---------------------------------------------------------------------------------------

/// One field of a `#[repr(C)]` struct.
#[derive(Debug)]
struct Field {
    name: &'static str,
    offset: usize,
    size: usize,
    ty: String,
}

/// One struct: its name, size and fields in declaration order.
#[derive(Debug)]
struct Layout {
    name: &'static str,
    size: usize,
    fields: Vec<Field>,
}

/// Size and type name of the field a projection selects (the projection is never called).
fn field_of<S, F>(_: fn(&S) -> &F) -> (usize, &'static str) {
    (std::mem::size_of::<F>(), std::any::type_name::<F>())
}

/// `core::any::type_name` without module paths: `[pageflip_abi::ipc::Extent; 8]` becomes
/// `[Extent; 8]`; whitespace is dropped so that `[u32;8]` and `[u32; 8]` compare equal.
fn short_type(t: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in t.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            out.push_str(word.rsplit("::").next().unwrap_or(""));
            word.clear();
            if !c.is_whitespace() {
                out.push(c);
            }
        }
    }
    out
}

/// The layout of a struct, from the list of its fields. The list must name every field: the
/// destructuring pattern without `..` does not compile otherwise.
macro_rules! layout {
    ($s:ident { $($f:ident),* $(,)? }) => {{
        #[allow(dead_code)]
        fn exhaustive(v: &$s) {
            let $s { $($f: _),* } = v;
        }
        Layout {
            name: stringify!($s),
            size: std::mem::size_of::<$s>(),
            fields: vec![$({
                let (size, ty) = field_of(|s: &$s| &s.$f);
                Field {
                    name: stringify!($f),
                    offset: std::mem::offset_of!($s, $f),
                    size,
                    ty: short_type(ty),
                }
            }),*],
        }
    }};
}

/// Every `#[repr(C)]` struct of the crate.
fn layouts() -> Vec<Layout> {
    vec![
        layout!(BootInfo {
            magic,
            abi_version,
            vm_id,
            num_vms,
            num_peers,
            peer_ids,
            mem_size,
            free_start,
            tsc_khz,
            num_params,
            transport,
            params,
            mmio_base,
        }),
        layout!(ResultRecord {
            kind,
            name_len,
            message_len,
            reserved,
            name,
            message
        }),
        layout!(SampleDesc { gpa, count }),
        layout!(IpcHeader {
            magic,
            batch,
            version,
            wait_timeout_us,
            send_head,
            send_tail,
            recv_head,
            recv_tail,
            post_head,
            post_tail,
            drains,
            sent,
            received,
            refused,
            ring_error,
            reserved1,
            post_refused,
        }),
        layout!(Extent {
            gpa,
            pages,
            reserved
        }),
        layout!(PostEntry { gpa, pages, status }),
        layout!(SendDesc {
            seq,
            dst,
            flags,
            len,
            nextents,
            status,
            reserved,
            extents
        }),
        layout!(RecvEntry {
            seq,
            src,
            dst,
            len,
            nextents,
            extents
        }),
        layout!(RingControl {
            head,
            pad0,
            tail,
            pad1
        }),
        layout!(SlotHeader {
            seq,
            src,
            dst,
            len,
            flags
        }),
        layout!(DgramConfig {
            vm_id,
            num_vms,
            max_payload,
            reserved
        }),
        layout!(DgramHeader {
            seq,
            src,
            dst,
            len,
            flags
        }),
    ]
}

/// `(path, value)` of a list of constants, the path as the docs write it.
macro_rules! consts {
    ($($m:ident :: $c:ident),* $(,)?) => {
        vec![$((concat!(stringify!($m), "::", stringify!($c)), $m::$c as u64)),*]
    };
}

/// `(name, value)` of root constants.
macro_rules! root_consts {
    ($($c:ident),* $(,)?) => {
        vec![$((stringify!($c), pageflip_abi::$c as u64)),*]
    };
}

/// Every documented constant (register offsets are in [`pageflip_registers`] and
/// [`virtio_registers`]).
fn constants() -> BTreeMap<&'static str, u64> {
    let mut all: Vec<(&'static str, u64)> = root_consts![
        ABI_VERSION,
        PAGE_SIZE,
        MAX_VMS,
        MAX_PARAMS,
        EXIT_PANIC,
        GDT_GPA,
        TSS_GPA,
        PML4_GPA,
        PDPT_GPA,
        PD_GPA,
        PT0_GPA,
        BOOT_INFO_GPA,
        TRANSPORT_GPA,
        STACK_GUARD_GPA,
        STACK_BOTTOM,
        STACK_TOP,
        IMAGE_BASE,
        MIN_MEM_SIZE,
        MAX_MEM_SIZE,
        MEM_ALIGN,
        MMIO_BASE,
        MMIO_SIZE,
        IDENTITY_MAP_END,
        SEL_KERNEL_CODE,
        SEL_KERNEL_DATA,
        SEL_USER_CODE,
        SEL_USER_DATA,
        SEL_TSS,
        BOOT_INFO_MAGIC,
        TRANSPORT_NONE,
        TRANSPORT_QUEUES,
        TRANSPORT_VIRTIO,
        TRANSPORT_SHMEM,
        RECORD_NAME_LEN,
        RECORD_MESSAGE_LEN,
    ];
    all.extend(consts![
        mmio::MAGIC_VALUE,
        mmio::PHASE_BEGIN,
        mmio::PHASE_END,
        mmio::CONSOLE_MAX,
        mmio::SAMPLES_MAX,
        mmio::SAMPLES_TOTAL_MAX,
        mmio::RECORDS_MAX,
        mmio::GUEST_ERRORS_LISTED,
        ipc::IPC_ABI_VERSION,
        ipc::IPC_HEADER_GPA,
        ipc::SEND_RING_GPA,
        ipc::RECV_RING_GPA,
        ipc::POST_RING_GPA,
        ipc::IPC_END_GPA,
        ipc::SEND_RING_LEN,
        ipc::RECV_RING_LEN,
        ipc::POST_RING_LEN,
        ipc::MAX_EXTENTS,
        ipc::MAX_MSG_PAGES,
        ipc::HUGE_PAGES,
        ipc::HUGE_PAGE_SIZE,
        ipc::IPC_MAGIC,
        ipc::FLAG_URGENT,
        ipc::DOORBELL_SEND,
        ipc::DOORBELL_FLUSH,
        shmem::SHMEM_GPA,
        shmem::RING_SLOTS,
        shmem::SLOT_BYTES,
        shmem::SLOT_HEADERS_OFFSET,
        shmem::RING_BYTES,
        shmem::SHMEM_SIZE,
        shmem::SLOT_HEADER_STRIDE,
        virtio::VIRTIO_MMIO_GPA,
        virtio::VIRTIO_MMIO_SIZE,
        virtio::MAGIC,
        virtio::VERSION,
        virtio::DEVICE_ID,
        virtio::VENDOR_ID,
        virtio::STATUS_ACKNOWLEDGE,
        virtio::STATUS_DRIVER,
        virtio::STATUS_DRIVER_OK,
        virtio::STATUS_FEATURES_OK,
        virtio::STATUS_DEVICE_NEEDS_RESET,
        virtio::STATUS_FAILED,
        virtio::F_EVENT_IDX,
        virtio::F_VERSION_1,
        virtio::DEVICE_FEATURES,
        virtio::RX_QUEUE,
        virtio::TX_QUEUE,
        virtio::NUM_QUEUES,
        virtio::QUEUE_NUM_MAX,
        virtio::VIRTQ_DESC_F_NEXT,
        virtio::VIRTQ_DESC_F_WRITE,
        virtio::VIRTQ_DESC_F_INDIRECT,
        virtio::VIRTQ_AVAIL_F_NO_INTERRUPT,
        virtio::VIRTQ_USED_F_NO_NOTIFY,
        virtio::MAX_PAYLOAD,
        virtio::HEADER_SIZE,
    ]);
    let map: BTreeMap<_, _> = all.iter().copied().collect();
    assert_eq!(map.len(), all.len(), "a constant is listed twice");
    map
}

/// The pageflip device's registers, `(offset, name)`: every 8-byte offset of the device page
/// that `mmio::register_name` knows, so a new register fails here until it is documented.
fn pageflip_registers() -> Vec<(u64, String)> {
    (0..pageflip_abi::MMIO_SIZE)
        .step_by(8)
        .filter(|&o| mmio::register_name(o) != "unknown")
        .map(|o| (o, mmio::register_name(o).to_string()))
        .collect()
}

/// The pageflip register constants of `mmio` (source names, for the source scan).
fn pageflip_register_consts() -> Vec<(&'static str, u64)> {
    consts![
        mmio::MAGIC,
        mmio::STATUS,
        mmio::CONSOLE,
        mmio::RESULT,
        mmio::SAMPLES,
        mmio::PHASE,
        mmio::DOORBELL,
        mmio::DONE,
        mmio::BARRIER,
        mmio::IPC_DOORBELL,
        mmio::IPC_RECV_WAIT,
    ]
}

/// The virtio-mmio registers, `(source path, offset)`; the docs name them as the virtio
/// specification does (`REG_QUEUE_DESC_LOW` is `QueueDescLow`, `REG_CONFIG` is `Config`).
fn virtio_registers() -> Vec<(&'static str, u64)> {
    consts![
        virtio::REG_MAGIC_VALUE,
        virtio::REG_VERSION,
        virtio::REG_DEVICE_ID,
        virtio::REG_VENDOR_ID,
        virtio::REG_DEVICE_FEATURES,
        virtio::REG_DEVICE_FEATURES_SEL,
        virtio::REG_DRIVER_FEATURES,
        virtio::REG_DRIVER_FEATURES_SEL,
        virtio::REG_QUEUE_SEL,
        virtio::REG_QUEUE_NUM_MAX,
        virtio::REG_QUEUE_NUM,
        virtio::REG_QUEUE_READY,
        virtio::REG_QUEUE_NOTIFY,
        virtio::REG_INTERRUPT_STATUS,
        virtio::REG_INTERRUPT_ACK,
        virtio::REG_STATUS,
        virtio::REG_QUEUE_DESC_LOW,
        virtio::REG_QUEUE_DESC_HIGH,
        virtio::REG_QUEUE_DRIVER_LOW,
        virtio::REG_QUEUE_DRIVER_HIGH,
        virtio::REG_QUEUE_DEVICE_LOW,
        virtio::REG_QUEUE_DEVICE_HIGH,
        virtio::REG_CONFIG_GENERATION,
        virtio::REG_CONFIG,
    ]
}

/// A register name compared loosely: `QueueDescLow`, `REG_QUEUE_DESC_LOW`,
/// `virtio::REG_QUEUE_DESC_LOW` and `queue_desc_low` are all `queuedesclow`.
fn loose(name: &str) -> String {
    let name = name.rsplit("::").next().unwrap_or(name);
    let name = name.strip_prefix("REG_").unwrap_or(name);
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The statuses of an enum, `(value, name)`.
fn statuses(which: &str) -> Option<Vec<(u64, String)>> {
    Some(match which {
        "IpcStatus" => IPC_STATUSES
            .iter()
            .map(|s| (*s as u64, s.name().to_string()))
            .collect(),
        "Status" => (0..256)
            .filter_map(Status::from_u64)
            .map(|s| (s as u64, s.name().to_string()))
            .collect(),
        "TxStatus" => (0..256)
            .filter_map(TxStatus::from_u32)
            .map(|s| (s as u64, s.name().to_string()))
            .collect(),
        _ => return None,
    })
}

/// The indices of the workloads' parameters.
fn params(which: &str) -> Option<Vec<(u64, &'static str)>> {
    let list = match which {
        "ipc_workloads" => vec![
            (ipc_workloads::COUNT, "COUNT"),
            (ipc_workloads::SIZE, "SIZE"),
            (ipc_workloads::BATCH, "BATCH"),
            (ipc_workloads::RECV_MODE, "RECV_MODE"),
            (ipc_workloads::URGENT_EVERY, "URGENT_EVERY"),
            (ipc_workloads::CHECK, "CHECK"),
            (ipc_workloads::WAIT_TIMEOUT_US, "WAIT_TIMEOUT_US"),
            (ipc_workloads::IDLE_TIMEOUT_MS, "IDLE_TIMEOUT_MS"),
            (ipc_workloads::EVENT_IDX, "EVENT_IDX"),
            (ipc_workloads::DEPTH, "DEPTH"),
            (ipc_workloads::TOUCH, "TOUCH"),
        ],
        _ => return None,
    };
    Some(list.into_iter().map(|(i, n)| (i as u64, n)).collect())
}

// ---------------------------------------------------------------------------------------
// What the docs say
// ---------------------------------------------------------------------------------------

/// One checked table of a document.
#[derive(Debug)]
struct Table {
    doc: String,
    /// Line of the marker (1-based).
    line: usize,
    /// `layout`, `constants`, ...
    kind: String,
    /// The marker's argument: the struct, enum or register set.
    arg: String,
    /// `key=value` attributes of the marker.
    attrs: BTreeMap<String, String>,
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    /// What to call this table in a message.
    fn what(&self) -> String {
        let arg = if self.arg.is_empty() {
            String::new()
        } else {
            format!(" {}", self.arg)
        };
        format!("{}:{}: table `{}{}`", self.doc, self.line, self.kind, arg)
    }

    /// The index of the column named `name`.
    fn column(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "{} has no column `{name}` (columns: {})",
                    self.what(),
                    self.header.join(", ")
                )
            })
    }
}

/// The marker kinds this test knows.
const KINDS: [&str; 6] = [
    "layout",
    "constants",
    "magics",
    "statuses",
    "registers",
    "params",
];

/// Splits a table row into trimmed cells; `\|` is a pipe inside a cell.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    let mut out = vec![String::new()];
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// The checked tables of a document's text; errors for markers without a table.
fn parse(doc: &str, text: &str) -> (Vec<Table>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(inner) = line
            .trim()
            .strip_prefix("<!--")
            .and_then(|l| l.strip_suffix("-->"))
        else {
            continue;
        };
        let inner = inner.trim();
        let (kind, rest) = inner.split_once(':').unwrap_or((inner, ""));
        if !KINDS.contains(&kind.trim()) {
            continue;
        }
        let mut words = rest.split_whitespace();
        let mut arg = String::new();
        let mut attrs = BTreeMap::new();
        for w in words.by_ref() {
            match w.split_once('=') {
                Some((k, v)) => {
                    attrs.insert(k.to_string(), v.to_string());
                }
                None if arg.is_empty() => arg = w.to_string(),
                None => errors.push(format!("{doc}:{}: stray word `{w}` in marker", i + 1)),
            }
        }
        let mut j = i + 1;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        let mut table_lines = Vec::new();
        while j < lines.len() && lines[j].trim_start().starts_with('|') {
            table_lines.push((j + 1, lines[j]));
            j += 1;
        }
        let mut table = Table {
            doc: doc.to_string(),
            line: i + 1,
            kind: kind.trim().to_string(),
            arg,
            attrs,
            header: Vec::new(),
            rows: Vec::new(),
        };
        if table_lines.len() < 2 {
            errors.push(format!("{} is not followed by a table", table.what()));
            continue;
        }
        table.header = cells(table_lines[0].1)
            .iter()
            .map(|h| h.trim_matches('`').to_string())
            .collect();
        for &(n, l) in &table_lines[2..] {
            let row = cells(l);
            if row.len() != table.header.len() {
                errors.push(format!(
                    "{}:{n}: row has {} cells, the header {}",
                    doc,
                    row.len(),
                    table.header.len()
                ));
            }
            table.rows.push((n, row));
        }
        tables.push(table);
    }
    (tables, errors)
}

/// A cell's value: its first code span, or the whole cell.
fn code(cell: &str) -> &str {
    match cell.split_once('`') {
        Some((_, rest)) => rest.split_once('`').map_or(rest, |(c, _)| c).trim(),
        None => cell.trim(),
    }
}

/// A number in a cell: decimal or `0x` hex, `_` and `,` allowed between digits.
fn number(cell: &str) -> Option<u64> {
    let s: String = code(cell)
        .chars()
        .filter(|c| *c != '_' && *c != ',')
        .collect();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The checked tables of every document of the contract.
fn all_tables() -> Vec<Table> {
    let mut tables = Vec::new();
    let mut errors = Vec::new();
    for doc in DOCS {
        let path = docs_dir().join(doc);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let (t, e) = parse(doc, &text);
        tables.extend(t);
        errors.extend(e);
    }
    report(errors);
    tables
}

/// Fails with every error, one per line.
fn report(errors: Vec<String>) {
    if !errors.is_empty() {
        let mut msg = format!(
            "{} disagreement(s) between the docs and pageflip-abi:\n",
            errors.len()
        );
        for e in &errors {
            let _ = writeln!(msg, "  - {e}");
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------------------
// The checks (pure functions of tables, so that their own tests can feed them bad tables)
// ---------------------------------------------------------------------------------------

/// Checks every layout table against the structs, and that every struct has one.
fn check_layouts(tables: &[Table], layouts: &[Layout]) -> Vec<String> {
    let mut errors = Vec::new();
    for l in layouts {
        if !tables.iter().any(|t| t.kind == "layout" && t.arg == l.name) {
            errors.push(format!(
                "struct {} has no layout table in {} (add `<!-- layout: {} size={} -->` before one)",
                l.name,
                DOCS.join(", "),
                l.name,
                l.size
            ));
        }
    }
    for t in tables.iter().filter(|t| t.kind == "layout") {
        let Some(l) = layouts.iter().find(|l| l.name == t.arg) else {
            errors.push(format!(
                "{}: no such #[repr(C)] struct in pageflip-abi",
                t.what()
            ));
            continue;
        };
        match t.attrs.get("size").and_then(|s| number(s)) {
            Some(n) if n as usize == l.size => {}
            Some(n) => errors.push(format!(
                "{}: size={n} in the marker, but size_of::<{}>() is {}",
                t.what(),
                l.name,
                l.size
            )),
            None => errors.push(format!("{}: the marker has no size=N", t.what())),
        }
        let cols = ["offset", "size", "type", "field"].map(|c| t.column(c));
        let [offset, size, ty, field] = match cols {
            [Ok(a), Ok(b), Ok(c), Ok(d)] => [a, b, c, d],
            _ => {
                errors.extend(cols.into_iter().filter_map(Result::err));
                continue;
            }
        };
        let mut seen = BTreeSet::new();
        for (n, row) in &t.rows {
            let cell = |c: usize| row.get(c).map_or("", String::as_str);
            let name = code(cell(field));
            let at = format!("{}:{n}: {} table, field `{name}`", t.doc, l.name);
            if !seen.insert(name.to_string()) {
                errors.push(format!("{at} is listed twice"));
                continue;
            }
            let Some(f) = l.fields.iter().find(|f| f.name == name) else {
                errors.push(format!("{at} does not exist in the struct"));
                continue;
            };
            match number(cell(offset)) {
                Some(o) if o as usize == f.offset => {}
                o => errors.push(format!(
                    "{at}: offset {} in the doc, offset_of!({}, {}) is {}",
                    o.map_or(format!("`{}`", code(cell(offset))), |o| o.to_string()),
                    l.name,
                    f.name,
                    f.offset
                )),
            }
            match number(cell(size)) {
                Some(s) if s as usize == f.size => {}
                s => errors.push(format!(
                    "{at}: size {} in the doc, size_of is {}",
                    s.map_or(format!("`{}`", code(cell(size))), |s| s.to_string()),
                    f.size
                )),
            }
            let doc_ty = short_type(code(cell(ty)));
            if doc_ty != f.ty {
                errors.push(format!(
                    "{at}: type `{doc_ty}` in the doc, `{}` in Rust",
                    f.ty
                ));
            }
        }
        for f in &l.fields {
            if !seen.contains(f.name) {
                errors.push(format!(
                    "{}: field `{}` (offset {}, size {}) is missing",
                    t.what(),
                    f.name,
                    f.offset,
                    f.size
                ));
            }
        }
    }
    errors
}

/// Checks the field lists themselves: declaration order, no gaps, the struct's whole size.
fn check_field_lists(layouts: &[Layout]) -> Vec<String> {
    let mut errors = Vec::new();
    for l in layouts {
        let mut at = 0;
        for f in &l.fields {
            if f.offset != at {
                errors.push(format!(
                    "{}: field `{}` at offset {}, expected {at} (padding or a field out of order)",
                    l.name, f.name, f.offset
                ));
            }
            at = f.offset + f.size;
        }
        if at != l.size {
            errors.push(format!(
                "{}: the fields end at {at}, the struct at {}",
                l.name, l.size
            ));
        }
    }
    errors
}

/// Checks constants and magic tables, and that every constant has a row.
fn check_constants(tables: &[Table], consts: &BTreeMap<&'static str, u64>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut documented = BTreeSet::new();
    for t in tables
        .iter()
        .filter(|t| t.kind == "constants" || t.kind == "magics")
    {
        let (name, value) = match (t.column("name"), t.column("value")) {
            (Ok(n), Ok(v)) => (n, v),
            (n, v) => {
                errors.extend(n.err());
                errors.extend(v.err());
                continue;
            }
        };
        let magic = if t.kind == "magics" {
            match (t.column("ascii"), t.column("bytes")) {
                (Ok(a), Ok(b)) => Some((a, b)),
                (a, b) => {
                    errors.extend(a.err());
                    errors.extend(b.err());
                    continue;
                }
            }
        } else {
            None
        };
        for (n, row) in &t.rows {
            let cell = |c: usize| row.get(c).map_or("", String::as_str);
            let path = code(cell(name));
            let at = format!("{}:{n}: constant `{path}`", t.doc);
            let Some(&v) = consts.get(path) else {
                errors.push(format!(
                    "{at} is not a constant of pageflip-abi (or not in this test's list)"
                ));
                continue;
            };
            documented.insert(path);
            match number(cell(value)) {
                Some(d) if d == v => {}
                d => errors.push(format!(
                    "{at}: value {} in the doc, {v} = {v:#x} in Rust",
                    d.map_or(format!("`{}`", code(cell(value))), |d| format!("{d:#x}"))
                )),
            }
            if let Some((ascii, bytes)) = magic {
                let s = code(cell(ascii)).trim_matches('"');
                let width = s.len();
                let le = &v.to_le_bytes()[..width.min(8)];
                if !(width == 4 || width == 8) || s.as_bytes() != le || (width == 4 && v >> 32 != 0)
                {
                    errors.push(format!(
                        "{at}: ASCII \"{s}\" read little endian is not {v:#x}"
                    ));
                }
                let doc_bytes: Vec<u64> = code(cell(bytes))
                    .split_whitespace()
                    .filter_map(|b| u64::from_str_radix(b, 16).ok())
                    .collect();
                let want: Vec<u64> = le.iter().map(|&b| u64::from(b)).collect();
                if doc_bytes != want {
                    errors.push(format!(
                        "{at}: bytes `{}` in the doc, {} in memory",
                        code(cell(bytes)),
                        want.iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
            }
        }
    }
    for (path, v) in consts {
        if !documented.contains(path) {
            errors.push(format!(
                "constant `{path}` = {v:#x} has no row in any `<!-- constants -->` table of {}",
                DOCS.join(", ")
            ));
        }
    }
    errors
}

/// Checks the status tables: every status of the enum once, with its value and name.
fn check_statuses(tables: &[Table]) -> Vec<String> {
    let mut errors = Vec::new();
    for which in ["IpcStatus", "Status", "TxStatus"] {
        if !tables
            .iter()
            .any(|t| t.kind == "statuses" && t.arg == which)
        {
            errors.push(format!(
                "enum {which} has no `<!-- statuses: {which} -->` table"
            ));
        }
    }
    for t in tables.iter().filter(|t| t.kind == "statuses") {
        let Some(want) = statuses(&t.arg) else {
            errors.push(format!("{}: no such status enum", t.what()));
            continue;
        };
        let want: Vec<(u64, &str)> = want.iter().map(|(v, w)| (*v, w.as_str())).collect();
        let absent = format!("is not a status of {}", t.arg);
        errors.extend(check_numbered(
            t,
            &want,
            &Numbered {
                column: "value",
                label: &t.arg,
                absent: &absent,
                same: |a, b| a == b,
                shown: |v| v.to_string(),
                missing: |v, w| format!("status {v} `{w}` is missing"),
            },
        ));
    }
    errors
}

/// Checks the register tables of both devices.
fn check_registers(tables: &[Table]) -> Vec<String> {
    let mut errors = Vec::new();
    let sets: [(&str, Vec<(u64, String)>); 2] = [
        ("pageflip", pageflip_registers()),
        (
            "virtio",
            virtio_registers()
                .into_iter()
                .map(|(p, o)| (o, p.to_string()))
                .collect(),
        ),
    ];
    for (which, _) in &sets {
        if !tables
            .iter()
            .any(|t| t.kind == "registers" && t.arg == *which)
        {
            errors.push(format!(
                "the {which} device has no `<!-- registers: {which} -->` table"
            ));
        }
    }
    for t in tables.iter().filter(|t| t.kind == "registers") {
        let Some((_, want)) = sets.iter().find(|(w, _)| *w == t.arg) else {
            errors.push(format!("{}: no such device (pageflip, virtio)", t.what()));
            continue;
        };
        let want: Vec<(u64, &str)> = want.iter().map(|(o, w)| (*o, w.as_str())).collect();
        let label = format!("{} register", t.arg);
        errors.extend(check_numbered(
            t,
            &want,
            &Numbered {
                column: "offset",
                label: &label,
                absent: "is not a register of pageflip-abi",
                same: |a, b| loose(a) == loose(b),
                shown: |o| format!("{o:#x}"),
                missing: |o, w| format!("register `{w}` at {o:#x} is missing"),
            },
        ));
    }
    errors
}

/// Checks the parameter tables.
fn check_params(tables: &[Table]) -> Vec<String> {
    let mut errors = Vec::new();
    if !tables
        .iter()
        .any(|t| t.kind == "params" && t.arg == "ipc_workloads")
    {
        errors.push("no `<!-- params: ipc_workloads -->` table".to_string());
    }
    for t in tables.iter().filter(|t| t.kind == "params") {
        let Some(want) = params(&t.arg) else {
            errors.push(format!("{}: no such parameter set", t.what()));
            continue;
        };
        let absent = format!("is not in probes::{}", t.arg);
        errors.extend(check_numbered(
            t,
            &want,
            &Numbered {
                column: "index",
                label: "parameter",
                absent: &absent,
                same: |a, b| a == b,
                shown: |i| i.to_string(),
                missing: |i, w| format!("parameter {i} `{w}` is missing"),
            },
        ));
    }
    errors
}

/// How a table of numbered names (statuses, registers, parameters) is read and reported.
struct Numbered<'a> {
    /// The column of the numbers (`value`, `offset`, `index`), also its word in messages.
    column: &'a str,
    /// What a row is, after `doc:line:` (`IpcStatus`, `pageflip register`, `parameter`).
    label: &'a str,
    /// The end of the message for a row whose name is not in Rust.
    absent: &'a str,
    /// Whether a name in the doc is the name in Rust.
    same: fn(&str, &str) -> bool,
    /// A number as the messages show it.
    shown: fn(u64) -> String,
    /// The message for a name of Rust the table lacks.
    missing: fn(u64, &str) -> String,
}

/// Checks one table of numbered names against `want` (`(number, name)` in Rust): every row
/// names one of them with its number, and every one has a row.
fn check_numbered(t: &Table, want: &[(u64, &str)], how: &Numbered<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    let (number_col, name) = match (t.column(how.column), t.column("name")) {
        (Ok(i), Ok(n)) => (i, n),
        (i, n) => {
            errors.extend(i.err());
            errors.extend(n.err());
            return errors;
        }
    };
    let mut seen = BTreeSet::new();
    for (n, row) in &t.rows {
        let cell = |c: usize| row.get(c).map_or("", String::as_str);
        let doc_name = code(cell(name));
        let at = format!("{}:{n}: {} `{doc_name}`", t.doc, how.label);
        match want.iter().find(|(_, w)| (how.same)(w, doc_name)) {
            None => errors.push(format!("{at} {}", how.absent)),
            Some((v, _)) => {
                seen.insert(*v);
                if number(cell(number_col)) != Some(*v) {
                    errors.push(format!(
                        "{at}: {} `{}` in the doc, {} in Rust",
                        how.column,
                        code(cell(number_col)),
                        (how.shown)(*v)
                    ));
                }
            }
        }
    }
    for (v, w) in want {
        if !seen.contains(v) {
            errors.push(format!("{}: {}", t.what(), (how.missing)(*v, w)));
        }
    }
    errors
}

/// Scans the ABI sources: every `#[repr(C)]` struct must be in [`layouts`], every top-level
/// `pub const` in [`constants`], a register list, or [`COVERED_ELSEWHERE`].
fn check_sources(layouts: &[Layout], consts: &BTreeMap<&'static str, u64>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut known: BTreeSet<String> = consts.keys().map(|k| k.to_string()).collect();
    known.extend(
        pageflip_register_consts()
            .iter()
            .map(|(p, _)| p.to_string()),
    );
    known.extend(virtio_registers().iter().map(|(p, _)| p.to_string()));
    known.extend(COVERED_ELSEWHERE.iter().map(|(p, _)| p.to_string()));
    for (file, prefix) in SOURCES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line
                .strip_prefix("pub const ")
                .filter(|r| !r.starts_with("fn "))
            {
                let name = rest.split(':').next().unwrap_or("").trim();
                let path = format!("{prefix}{name}");
                if !known.contains(&path) {
                    errors.push(format!(
                        "workloads/abi/{file}:{}: `pub const {name}` is not in tests/doc_layouts.rs: \
                         document it in a constants (or registers) table and add `{path}` to the test's list",
                        i + 1
                    ));
                }
            }
            if line.trim() == "#[repr(C)]" {
                let name = lines[i + 1..]
                    .iter()
                    .find_map(|l| l.trim().strip_prefix("pub struct "))
                    .and_then(|l| l.split(|c: char| !c.is_alphanumeric() && c != '_').next());
                if let Some(name) = name {
                    if !layouts.iter().any(|l| l.name == name) {
                        errors.push(format!(
                            "workloads/abi/{file}:{}: #[repr(C)] struct {name} is not in tests/doc_layouts.rs's layouts(): \
                             give it a `<!-- layout: {name} size=N -->` table and add it there",
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    errors
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn layout_tables_match_the_structs() {
    let tables = all_tables();
    let layouts = layouts();
    let mut errors = check_field_lists(&layouts);
    errors.extend(check_layouts(&tables, &layouts));
    report(errors);
}

#[test]
fn constant_and_magic_tables_match_the_abi() {
    report(check_constants(&all_tables(), &constants()));
}

#[test]
fn status_tables_match_the_enums() {
    report(check_statuses(&all_tables()));
}

#[test]
fn register_tables_match_the_devices() {
    report(check_registers(&all_tables()));
}

#[test]
fn parameter_tables_match_the_probes() {
    report(check_params(&all_tables()));
}

#[test]
fn every_struct_and_constant_of_the_sources_is_known() {
    report(check_sources(&layouts(), &constants()));
}

// The checks themselves can fail: fed a broken table, each names the doc, the table and the
// field.

fn one(text: &str) -> Vec<Table> {
    let (t, e) = parse("test.md", text);
    assert!(e.is_empty(), "{e:?}");
    t
}

const EXTENT_OK: &str = "\
<!-- layout: Extent size=16 -->

| Offset | Size | Type | Field | Meaning |
|---:|---:|---|---|---|
| 0 | 8 | u64 | `gpa` | first page |
| 8 | 4 | u32 | `pages` | pages |
| 12 | 4 | `u32` | `reserved` | 0 \\| ignored |
";

fn extent_errors(text: &str) -> Vec<String> {
    let layouts: Vec<Layout> = layouts()
        .into_iter()
        .filter(|l| l.name == "Extent")
        .collect();
    check_layouts(&one(text), &layouts)
}

#[test]
fn a_good_table_passes() {
    assert_eq!(extent_errors(EXTENT_OK), Vec::<String>::new());
}

#[test]
fn a_wrong_offset_size_or_type_is_named() {
    let e = extent_errors(&EXTENT_OK.replace("| 8 | 4 | u32 | `pages`", "| 9 | 2 | u16 | `pages`"));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].contains("test.md:6: Extent table, field `pages`: offset 9 in the doc, offset_of!(Extent, pages) is 8"), "{e:?}");
    assert!(e[1].contains("size 2 in the doc, size_of is 4"), "{e:?}");
    assert!(
        e[2].contains("type `u16` in the doc, `u32` in Rust"),
        "{e:?}"
    );
}

#[test]
fn a_missing_or_unknown_field_is_named() {
    let e = extent_errors(&EXTENT_OK.replace("`reserved`", "`reserved0`"));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("field `reserved0` does not exist"), "{e:?}");
    assert!(
        e[1].contains("table `layout Extent`: field `reserved` (offset 12, size 4) is missing"),
        "{e:?}"
    );
}

#[test]
fn a_wrong_size_or_a_missing_table_is_named() {
    let e = extent_errors(&EXTENT_OK.replace("size=16", "size=24"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("size=24 in the marker, but size_of::<Extent>() is 16"),
        "{e:?}"
    );
    let e = extent_errors("no tables here\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("struct Extent has no layout table"), "{e:?}");
}

#[test]
fn a_wrong_constant_magic_or_status_is_named() {
    let consts: BTreeMap<&str, u64> =
        [("ipc::IPC_MAGIC", ipc::IPC_MAGIC), ("ipc::MAX_EXTENTS", 8)].into();
    let text = "\
<!-- constants -->
| Name | Value |
|---|---|
| `ipc::MAX_EXTENTS` | 9 |

<!-- magics -->
| Name | Value | ASCII | Bytes |
|---|---|---|---|
| `ipc::IPC_MAGIC` | `0x3230_5143_5049_4650` | `\"PFIPCQ02\"` | `50 46 49 50 43 51 30 33` |
";
    let e = check_constants(&one(text), &consts);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains(
            "test.md:4: constant `ipc::MAX_EXTENTS`: value 0x9 in the doc, 8 = 0x8 in Rust"
        ),
        "{e:?}"
    );
    assert!(
        e[1].contains(
            "bytes `50 46 49 50 43 51 30 33` in the doc, 50 46 49 50 43 51 30 32 in memory"
        ),
        "{e:?}"
    );
    let e = check_constants(
        &one("<!-- constants -->\n| Name | Value |\n|---|---|\n"),
        &consts,
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("constant `ipc::IPC_MAGIC` = 0x3230514350494650 has no row"),
        "{e:?}"
    );

    // A status table without the last status (a new one added to the code only).
    let mut rows = String::from("<!-- statuses: IpcStatus -->\n| Value | Name |\n|---|---|\n");
    for s in &IPC_STATUSES[..IPC_STATUSES.len() - 1] {
        let _ = writeln!(rows, "| {} | `{}` |", *s as u32, s.name());
    }
    let last = IPC_STATUSES[IPC_STATUSES.len() - 1];
    let e: Vec<String> = check_statuses(&one(&rows))
        .into_iter()
        .filter(|e| !e.contains("has no `<!-- statuses"))
        .collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains(&format!(
            "status {} `{}` is missing",
            last as u32,
            last.name()
        )),
        "{e:?}"
    );
}

#[test]
fn type_names_lose_their_paths() {
    assert_eq!(short_type("[pageflip_abi::ipc::Extent; 8]"), "[Extent;8]");
    assert_eq!(short_type("u64"), "u64");
    assert_eq!(short_type("[u32;8]"), short_type("[u32; 8]"));
    assert_eq!(loose("virtio::REG_QUEUE_DESC_LOW"), loose("QueueDescLow"));
    assert_eq!(number("`0x20_0000`"), Some(0x20_0000));
    assert_eq!(number("65,536"), Some(65536));
    assert_eq!(cells("| a \\| b | c |"), vec!["a | b", "c"]);
}
