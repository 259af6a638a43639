//! The `format` files of tracefs events: the offset, size and signedness of every field of a
//! raw tracepoint record, parsed so that a record can be decoded without hard-coded layouts.

/// Why an event's `format` file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A `field:` line is not `field:<decl>; offset:N; size:N; signed:N;`.
    #[error("bad field line {0:?}")]
    BadField(String),
    /// The file has no `name:` line.
    #[error("no name: line")]
    NoName,
    /// The file has no (numeric) `ID:` line.
    #[error("no ID: line")]
    NoId,
    /// A field the decoder needs is missing or not an integer of 1, 2, 4 or 8 bytes.
    #[error("no integer field {0:?}")]
    NoField(String),
}

/// A parsed tracefs `format` file: the layout of the event's raw record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    /// The event's name (`kvm_exit`).
    pub name: String,
    /// Its tracepoint id.
    pub id: u64,
    /// Its fields, common ones first, in file order.
    pub fields: Vec<FormatField>,
}

/// One field of a raw tracepoint record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatField {
    /// Its name (`exit_reason`).
    pub name: String,
    /// Its C declaration (`unsigned int exit_reason`).
    pub decl: String,
    /// Byte offset in the raw record.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Whether it is a signed integer.
    pub signed: bool,
}

impl EventFormat {
    /// Parses the text of `events/<sys>/<event>/format`.
    pub fn parse(text: &str) -> Result<EventFormat, FormatError> {
        let mut name = None;
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("name:") {
                name = Some(n.trim().to_string());
            } else if let Some(n) = line.strip_prefix("ID:") {
                id = Some(n.trim().parse().map_err(|_| FormatError::NoId)?);
            } else if line.starts_with("field:") {
                fields.push(FormatField::parse(line)?);
            }
        }
        Ok(EventFormat {
            name: name.ok_or(FormatError::NoName)?,
            id: id.ok_or(FormatError::NoId)?,
            fields,
        })
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FormatField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The field called `name` if it is an integer [`FormatField::read`] can read.
    pub(super) fn int_field(&self, name: &str) -> Result<FormatField, FormatError> {
        self.field(name)
            .filter(|f| matches!(f.size, 1 | 2 | 4 | 8))
            .cloned()
            .ok_or_else(|| FormatError::NoField(name.to_string()))
    }
}

impl FormatField {
    /// Parses `field:<decl>;\toffset:N;\tsize:N;\tsigned:N;`.
    pub(super) fn parse(line: &str) -> Result<FormatField, FormatError> {
        let bad = || FormatError::BadField(line.to_string());
        let mut decl = None;
        let (mut offset, mut size, mut signed) = (None, None, None);
        for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once(':').ok_or_else(bad)?;
            let number = || value.trim().parse::<usize>().map_err(|_| bad());
            match key.trim() {
                "field" => decl = Some(value.trim().to_string()),
                "offset" => offset = Some(number()?),
                "size" => size = Some(number()?),
                "signed" => signed = Some(number()? != 0),
                _ => {}
            }
        }
        let decl = decl.ok_or_else(bad)?;
        // The name is the declaration's last identifier once every `[...]` is gone:
        // `unsigned long guest_rip`, `char comm[16]`, `__data_loc char[] filename`.
        let mut plain = String::with_capacity(decl.len());
        let mut depth = 0usize;
        for c in decl.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ if depth == 0 => plain.push(c),
                _ => {}
            }
        }
        let name = plain
            .split_whitespace()
            .last()
            .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(bad)?
            .to_string();
        Ok(FormatField {
            name,
            decl,
            offset: offset.ok_or_else(bad)?,
            size: size.ok_or_else(bad)?,
            signed: signed.ok_or_else(bad)?,
        })
    }

    /// The field's value in `raw` (little-endian), sign-extended if it is signed; `None` if
    /// `raw` is too short or the field is not an integer of 1, 2, 4 or 8 bytes.
    pub fn read(&self, raw: &[u8]) -> Option<i128> {
        if !matches!(self.size, 1 | 2 | 4 | 8) {
            return None;
        }
        let bytes = raw.get(self.offset..self.offset.checked_add(self.size)?)?;
        let mut buf = [0u8; 8];
        buf[..self.size].copy_from_slice(bytes);
        let unsigned = u64::from_le_bytes(buf);
        Some(if self.signed {
            let shift = 64 - 8 * self.size as u32;
            i128::from(((unsigned << shift) as i64) >> shift)
        } else {
            i128::from(unsigned)
        })
    }
}
