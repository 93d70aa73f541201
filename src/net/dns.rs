//! DNS messages (RFC 1035), as much as the `dns` and `dns_zone` probes
//! need: a query of one question, and the parse of an answer (its header,
//! its records with compressed names) with the record data rendered as in a
//! zone file. No I/O here: the probes send and receive.
//!
//! Names are kept in wire form and shown in ASCII, `xn--` labels as they
//! are. Record data of the common types is rendered field by field (TXT
//! strings joined); any other type in RFC 3597's `\# LENGTH HEX` form.
//! Nothing a server sends can make the parse panic or loop: every read is
//! bounded by the message, and a compression pointer must point back,
//! before the labels it follows.

use std::cmp::Ordering;
use std::fmt::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The most bytes of a name in a message, length bytes and root included.
const MAX_NAME: usize = 255;
/// The most bytes of one label.
const MAX_LABEL: usize = 63;

const ENDS_EARLY: &str = "the message ends early";

/// A fully qualified domain name, in wire form: each label after its
/// length, then the root's 0. Equal and ordered without regard to ASCII
/// case, ordered label by label from the root (RFC 4034's canonical order).
#[derive(Clone, Debug)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// A name as a user writes it, with or without its final dot (`""` and
    /// `"."` are the root): labels of ASCII letters, digits, `-` (not
    /// first) and `_`, and `*` first for a wildcard; a label of at most 63
    /// bytes, the name at most 255 in a message. The error says what is
    /// wrong, for a message.
    pub fn parse(text: &str) -> Result<Name, String> {
        let body = text.strip_suffix('.').unwrap_or(text);
        let mut wire = Vec::with_capacity(body.len() + 2);
        if !body.is_empty() {
            for label in body.split('.') {
                check_label(label)?;
                wire.push(label.len() as u8);
                wire.extend_from_slice(label.as_bytes());
            }
        }
        wire.push(0);
        if wire.len() > MAX_NAME {
            return Err(format!(
                "{} bytes in a DNS message, more than {MAX_NAME}",
                wire.len()
            ));
        }
        Ok(Name { wire })
    }

    /// The labels, from the first (leftmost) to the last before the root.
    fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.wire[..];
        std::iter::from_fn(move || {
            let (&len, after) = rest.split_first()?;
            let (label, next) = after.split_at_checked(usize::from(len))?;
            rest = next;
            (len > 0).then_some(label)
        })
    }
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("an empty label (a leading dot, or two dots in a row)".into());
    }
    if label.len() > MAX_LABEL {
        return Err(format!(
            "the label {label:?} is {} bytes long, more than {MAX_LABEL}",
            label.len()
        ));
    }
    let ok = |i: usize, c: u8| {
        c.is_ascii_alphanumeric() || c == b'_' || (c == b'-' && i > 0) || (c == b'*' && i == 0)
    };
    match label.bytes().enumerate().find(|&(i, c)| !ok(i, c)) {
        None => Ok(()),
        Some(_) => Err(format!(
            "the label {label:?} has a character other than ASCII letters, digits, '-' (not first) and '_'"
        )),
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for label in self.labels() {
            any = true;
            for &c in label {
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'*') {
                    f.write_char(char::from(c))?;
                } else if c.is_ascii_graphic() {
                    write!(f, "\\{}", char::from(c))?;
                } else {
                    write!(f, "\\{c:03}")?;
                }
            }
            f.write_char('.')?;
        }
        if !any {
            f.write_char('.')?;
        }
        Ok(())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        // Length bytes are at most 63, below the ASCII letters.
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        let mine: Vec<&[u8]> = self.labels().collect();
        let theirs: Vec<&[u8]> = other.labels().collect();
        let lower = |l: &[u8]| l.iter().map(u8::to_ascii_lowercase).collect::<Vec<u8>>();
        for (a, b) in mine.iter().rev().zip(theirs.iter().rev()) {
            match lower(a).cmp(&lower(b)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        mine.len().cmp(&theirs.len())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A record type, by its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordType(pub u16);

/// The record types known by name, for both directions.
const TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("NULL", 10),
    ("PTR", 12),
    ("HINFO", 13),
    ("MX", 15),
    ("TXT", 16),
    ("RP", 17),
    ("AFSDB", 18),
    ("SIG", 24),
    ("KEY", 25),
    ("AAAA", 28),
    ("LOC", 29),
    ("SRV", 33),
    ("NAPTR", 35),
    ("CERT", 37),
    ("DNAME", 39),
    ("OPT", 41),
    ("DS", 43),
    ("SSHFP", 44),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("NSEC3", 50),
    ("NSEC3PARAM", 51),
    ("TLSA", 52),
    ("SMIMEA", 53),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("OPENPGPKEY", 61),
    ("CSYNC", 62),
    ("ZONEMD", 63),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", 99),
    ("TSIG", 250),
    ("IXFR", 251),
    ("AXFR", 252),
    ("ANY", 255),
    ("URI", 256),
    ("CAA", 257),
];

impl RecordType {
    pub const A: RecordType = RecordType(1);
    pub const NS: RecordType = RecordType(2);
    pub const CNAME: RecordType = RecordType(5);
    pub const SOA: RecordType = RecordType(6);
    pub const PTR: RecordType = RecordType(12);
    pub const HINFO: RecordType = RecordType(13);
    pub const MX: RecordType = RecordType(15);
    pub const TXT: RecordType = RecordType(16);
    pub const AAAA: RecordType = RecordType(28);
    pub const SRV: RecordType = RecordType(33);
    pub const NAPTR: RecordType = RecordType(35);
    pub const DNAME: RecordType = RecordType(39);
    pub const SSHFP: RecordType = RecordType(44);
    pub const TLSA: RecordType = RecordType(52);
    pub const SMIMEA: RecordType = RecordType(53);
    pub const SPF: RecordType = RecordType(99);
    pub const CAA: RecordType = RecordType(257);

    /// A type by its name in any case (`*` is ANY), or `TYPE123`
    /// (RFC 3597).
    pub fn parse(text: &str) -> Option<RecordType> {
        if text == "*" {
            return Some(RecordType(255));
        }
        if let Some(&(_, n)) = TYPES.iter().find(|(t, _)| t.eq_ignore_ascii_case(text)) {
            return Some(RecordType(n));
        }
        let digits = text
            .get(..4)?
            .eq_ignore_ascii_case("TYPE")
            .then(|| &text[4..])?;
        if digits.starts_with('+') {
            return None;
        }
        digits.parse().ok().map(RecordType)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TYPES.iter().find(|&&(_, n)| n == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "TYPE{}", self.0),
        }
    }
}

/// The response code of an answer's header (its 4 bits; no EDNS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rcode(pub u8);

impl Rcode {
    pub const NO_ERROR: Rcode = Rcode(0);
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            0 => "No Error",
            1 => "Form Error",
            2 => "Server Failure",
            3 => "Non-Existent Domain",
            4 => "Not Implemented",
            5 => "Query Refused",
            6 => "Name should not exist",
            7 => "RR Set should not exist",
            8 => "RR Set does not exist",
            9 => "Not authorized",
            10 => "Name not in zone",
            n => return write!(f, "response code {n}"),
        };
        f.write_str(text)
    }
}

/// A query: one question of class IN, recursion desired or not, no EDNS
/// (so an answer over UDP is at most 512 bytes, or truncated).
pub fn query(id: u16, name: &Name, rtype: RecordType, recursion: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + name.wire.len() + 4);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[if recursion { 0x01 } else { 0x00 }, 0x00]);
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&name.wire);
    m.extend_from_slice(&rtype.0.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// An answer: its header, and its records unless it is truncated (then
/// the question is asked again over TCP, and the sections are left empty).
#[derive(Debug)]
pub struct Message {
    pub id: u16,
    /// QR: a response, not a query.
    pub response: bool,
    /// AA: the server is an authority for the name.
    pub authoritative: bool,
    /// TC: the answer did not fit.
    pub truncated: bool,
    pub rcode: Rcode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
}

#[derive(Debug)]
pub struct Record {
    pub name: Name,
    pub rtype: RecordType,
    pub data: RData,
}

/// Record data: what the probes read apart, and the text of the rest.
#[derive(Debug)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(Name),
    Soa(Soa),
    /// Any other type, rendered as in a zone file.
    Text(String),
}

#[derive(Debug)]
pub struct Soa {
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
            RData::Ns(n) => write!(f, "{n}"),
            RData::Soa(s) => write!(
                f,
                "{} {} {} {} {} {} {}",
                s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
            RData::Text(t) => f.write_str(t),
        }
    }
}

impl Message {
    /// Reads a message; the error says what was wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Message, String> {
        let mut r = Reader { msg: bytes, pos: 0 };
        let id = r.u16()?;
        let flags = r.u16()?;
        let questions = r.u16()?;
        let counts = [r.u16()?, r.u16()?, r.u16()?];
        let mut m = Message {
            id,
            response: flags & 0x8000 != 0,
            authoritative: flags & 0x0400 != 0,
            truncated: flags & 0x0200 != 0,
            rcode: Rcode((flags & 0x000f) as u8),
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        };
        if m.truncated {
            return Ok(m);
        }
        for _ in 0..questions {
            r.name()?;
            r.take(4)?;
        }
        for (count, section) in
            counts
                .into_iter()
                .zip([&mut m.answers, &mut m.authority, &mut m.additionals])
        {
            for _ in 0..count {
                section.push(r.record()?);
            }
        }
        Ok(m)
    }
}

/// A cursor over a message; `msg` ends where the part being read must
/// end (a record's data), and starts at the message's first byte, so
/// compression pointers resolve.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or(ENDS_EARLY)?;
        let bytes = self.msg.get(self.pos..end).ok_or(ENDS_EARLY)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A character string: a length byte and that many bytes.
    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = self.msg.get(self.pos..).unwrap_or_default();
        self.pos = self.msg.len();
        rest
    }

    fn done(&self) -> bool {
        self.pos >= self.msg.len()
    }

    /// A name, following compression pointers: each must point before
    /// the labels it follows began, so the walk always ends.
    fn name(&mut self) -> Result<Name, String> {
        let mut wire = Vec::new();
        let mut pos = self.pos;
        let mut floor = self.pos;
        let mut after = None;
        loop {
            let len = usize::from(*self.msg.get(pos).ok_or(ENDS_EARLY)?);
            match len >> 6 {
                0 if len == 0 => break,
                0 => {
                    let label = self.msg.get(pos + 1..pos + 1 + len).ok_or(ENDS_EARLY)?;
                    if wire.len() + 1 + len + 1 > MAX_NAME {
                        return Err(format!("a name longer than {MAX_NAME} bytes"));
                    }
                    wire.push(len as u8);
                    wire.extend_from_slice(label);
                    pos += 1 + len;
                }
                3 => {
                    let low = usize::from(*self.msg.get(pos + 1).ok_or(ENDS_EARLY)?);
                    let target = (len & 0x3f) << 8 | low;
                    if target >= floor {
                        return Err("a compression pointer that does not point back".into());
                    }
                    after.get_or_insert(pos + 2);
                    pos = target;
                    floor = target;
                }
                _ => return Err(format!("a label of unknown type 0x{len:02x}")),
            }
        }
        wire.push(0);
        self.pos = after.unwrap_or(pos + 1);
        Ok(Name { wire })
    }

    fn record(&mut self) -> Result<Record, String> {
        let name = self.name()?;
        let rtype = RecordType(self.u16()?);
        self.take(6)?; // class and TTL
        let len = usize::from(self.u16()?);
        let end = self.pos + len;
        if end > self.msg.len() {
            return Err(ENDS_EARLY.into());
        }
        let mut data = Reader {
            msg: &self.msg[..end],
            pos: self.pos,
        };
        let bad = |e: String| format!("the {rtype} record of {name}: {e}");
        let rdata = data.rdata(rtype).map_err(bad)?;
        if !data.done() {
            return Err(bad(format!(
                "data left over: {} of {len} bytes",
                end - data.pos
            )));
        }
        self.pos = end;
        Ok(Record {
            name,
            rtype,
            data: rdata,
        })
    }

    fn rdata(&mut self, rtype: RecordType) -> Result<RData, String> {
        Ok(match rtype {
            RecordType::A => {
                let b = self.take(4)?;
                RData::A(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            RecordType::AAAA => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.take(16)?);
                RData::Aaaa(Ipv6Addr::from(a))
            }
            RecordType::NS => RData::Ns(self.name()?),
            RecordType::SOA => RData::Soa(Soa {
                mname: self.name()?,
                rname: self.name()?,
                serial: self.u32()?,
                refresh: self.u32()?,
                retry: self.u32()?,
                expire: self.u32()?,
                minimum: self.u32()?,
            }),
            _ => RData::Text(self.text(rtype)?),
        })
    }

    /// The zone-file text of the other types' data.
    fn text(&mut self, rtype: RecordType) -> Result<String, String> {
        let lossy = String::from_utf8_lossy;
        Ok(match rtype {
            RecordType::CNAME | RecordType::PTR | RecordType::DNAME => self.name()?.to_string(),
            RecordType::MX => {
                let preference = self.u16()?;
                format!("{preference} {}", self.name()?)
            }
            RecordType::SRV => {
                let (priority, weight, port) = (self.u16()?, self.u16()?, self.u16()?);
                format!("{priority} {weight} {port} {}", self.name()?)
            }
            RecordType::TXT | RecordType::SPF => {
                let mut text = String::new();
                while !self.done() {
                    text.push_str(&lossy(self.string()?));
                }
                text
            }
            RecordType::HINFO => {
                let cpu = lossy(self.string()?);
                format!("{cpu} {}", lossy(self.string()?))
            }
            RecordType::CAA => {
                let flags = self.u8()?;
                let tag = lossy(self.string()?);
                format!("{flags} {tag} \"{}\"", lossy(self.rest()))
            }
            RecordType::NAPTR => {
                let (order, preference) = (self.u16()?, self.u16()?);
                let flags = lossy(self.string()?);
                let services = lossy(self.string()?);
                let regexp = lossy(self.string()?);
                let replacement = self.name()?;
                format!(
                    "{order} {preference} \"{flags}\" \"{services}\" \"{regexp}\" {replacement}"
                )
            }
            RecordType::SSHFP => {
                let (algorithm, kind) = (self.u8()?, self.u8()?);
                format!("{algorithm} {kind} {}", hex(self.rest()))
            }
            RecordType::TLSA | RecordType::SMIMEA => {
                let (usage, selector, matching) = (self.u8()?, self.u8()?, self.u8()?);
                format!("{usage} {selector} {matching} {}", hex(self.rest()))
            }
            _ => {
                let data = self.rest();
                let mut text = format!("\\# {}", data.len());
                if !data.is_empty() {
                    text.push(' ');
                    text.push_str(&hex(data));
                }
                text
            }
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn names_as_users_write_them() {
        assert_eq!(name("www.Example.org").to_string(), "www.Example.org.");
        assert_eq!(name("www.example.org.").wire, name("www.example.org").wire);
        assert_eq!(name(".").to_string(), ".");
        assert_eq!(name("").to_string(), ".");
        assert_eq!(
            name("_sip._tcp.example.org").to_string(),
            "_sip._tcp.example.org."
        );
        assert_eq!(name("*.example.org").to_string(), "*.example.org.");
        assert_eq!(
            name("xn--bcher-kva.example").to_string(),
            "xn--bcher-kva.example."
        );
        for bad in [
            "a..b",
            ".a",
            "..",
            "-a.org",
            "a b.org",
            "bücher.de",
            "a*.org",
            "a/b",
        ] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
        let long = "a".repeat(63);
        assert!(Name::parse(&long).is_ok());
        let e = Name::parse(&"a".repeat(64)).unwrap_err();
        assert!(e.contains("64 bytes long, more than 63"), "{e}");
        // 4 labels of 62 and one of 1: 4 * 63 + 2 + 1 = 255 bytes on the wire
        let at_limit = format!("{0}.{0}.{0}.{0}.a", "b".repeat(62));
        assert_eq!(name(&at_limit).wire.len(), 255);
        let e = Name::parse(&format!("{at_limit}a")).unwrap_err();
        assert!(e.contains("256 bytes"), "{e}");
    }

    #[test]
    fn names_compare_without_case_from_the_root() {
        assert_eq!(name("NS1.example.TEST"), name("ns1.example.test."));
        assert_ne!(name("ns1.example.test"), name("ns2.example.test"));
        let mut names = [
            name("b.example.org"),
            name("example.org"),
            name("a.example.org"),
            name("z.example.com"),
            name("A.example.org"),
        ];
        names.sort();
        let shown: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            shown,
            [
                "z.example.com.",
                "example.org.",
                "a.example.org.",
                "A.example.org.",
                "b.example.org."
            ]
        );
    }

    #[test]
    fn record_types_both_ways() {
        for (text, n) in [("A", 1), ("aaaa", 28), ("Mx", 15), ("CAA", 257), ("*", 255)] {
            assert_eq!(RecordType::parse(text), Some(RecordType(n)), "{text}");
        }
        assert_eq!(RecordType::parse("TYPE65534"), Some(RecordType(65534)));
        assert_eq!(RecordType::parse("type1"), Some(RecordType::A));
        for bad in ["BOGUS", "", "TYPE", "TYPE65536", "TYPE+1", "TYPE-1", "AA"] {
            assert_eq!(RecordType::parse(bad), None, "{bad}");
        }
        assert_eq!(RecordType::SOA.to_string(), "SOA");
        assert_eq!(RecordType(65534).to_string(), "TYPE65534");
        for &(text, n) in TYPES {
            assert_eq!(RecordType(n).to_string(), text);
            assert_eq!(RecordType::parse(text), Some(RecordType(n)));
        }
    }

    #[test]
    fn a_query_is_one_question() {
        let q = query(0xbeef, &name("example.org"), RecordType::MX, true);
        let mut want = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x07example\x03org\x00");
        want.extend_from_slice(&[0, 15, 0, 1]);
        assert_eq!(q, want);
        let q = query(1, &name("."), RecordType::NS, false);
        assert_eq!(&q[2..4], &[0, 0]);
        assert_eq!(&q[12..], &[0, 0, 2, 0, 1]);
    }

    /// A hand-made answer to `example.org. ANY`: the question at offset 12,
    /// records naming it by pointer (0xc00c) and pointing into each other.
    fn answer() -> Vec<u8> {
        let mut m = vec![
            0x12, 0x34, // id
            0x85, 0x80, // QR, AA, RD, RA; NOERROR
            0, 1, 0, 11, 0, 1, 0, 1, // 1 question, 11 answers, 1 authority, 1 additional
        ];
        m.extend_from_slice(b"\x07example\x03org\x00\x00\xff\x00\x01");
        let rr = |m: &mut Vec<u8>, owner: &[u8], rtype: u16, data: &[u8]| {
            m.extend_from_slice(owner);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        };
        let here = b"\xc0\x0c";
        rr(&mut m, here, 1, &[192, 0, 2, 1]);
        rr(
            &mut m,
            here,
            28,
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        // MX 10 mail.example.org. (a label, then a pointer to the question)
        rr(&mut m, here, 15, b"\x00\x0a\x04mail\xc0\x0c");
        let mail = (m.len() - 7) as u16; // where "mail" began
        let mut cname = vec![0x03];
        cname.extend_from_slice(b"www");
        cname.extend_from_slice(&(0xc000 | mail).to_be_bytes()); // www.mail.example.org.
        rr(&mut m, here, 5, &cname);
        rr(&mut m, here, 16, b"\x05hello\x06 world");
        rr(&mut m, here, 257, b"\x00\x05issueletsencrypt.org");
        rr(&mut m, here, 33, b"\x00\x01\x00\x02\x01\xbb\x03sip\xc0\x0c");
        rr(
            &mut m,
            here,
            6,
            b"\x03ns1\xc0\x0c\x0ahostmaster\xc0\x0c\x78\x7b\x1e\x6d\x00\x00\x0e\x10\x00\x00\x02\x58\x00\x01\x51\x80\x00\x00\x01\x2c",
        );
        rr(&mut m, here, 44, &[1, 2, 0xab, 0xcd]);
        rr(&mut m, here, 48, &[1, 2, 3]);
        rr(&mut m, here, 13, b"\x03CPU\x02OS");
        // authority: NS ns1.example.org. (pointer into the SOA above)
        rr(&mut m, here, 2, b"\x03ns1\xc0\x0c");
        // additional: an EDNS OPT record, owner the root
        rr(&mut m, b"\x00", 41, &[]);
        m
    }

    #[test]
    fn an_answer_with_compressed_names() {
        let m = Message::parse(&answer()).unwrap();
        assert_eq!(m.id, 0x1234);
        assert!(m.response && m.authoritative && !m.truncated);
        assert_eq!(m.rcode, Rcode::NO_ERROR);
        let texts: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(
            texts,
            [
                "192.0.2.1",
                "2001:db8::1",
                "10 mail.example.org.",
                "www.mail.example.org.",
                "hello world",
                "0 issue \"letsencrypt.org\"",
                "1 2 443 sip.example.org.",
                "ns1.example.org. hostmaster.example.org. 2021334637 3600 600 86400 300",
                "1 2 abcd",
                "\\# 3 010203",
                "CPU OS",
            ]
        );
        assert!(m.answers.iter().all(|r| r.name == name("EXAMPLE.org")));
        assert!(matches!(&m.answers[7].data, RData::Soa(s) if s.serial == 2021334637));
        assert_eq!(m.answers[9].rtype.to_string(), "DNSKEY");
        assert!(matches!(&m.authority[0].data, RData::Ns(n) if *n == name("ns1.example.org")));
        assert_eq!(m.additionals[0].name, name("."));
        assert_eq!(m.additionals[0].data.to_string(), "\\# 0");
    }

    #[test]
    fn a_truncated_answer_is_its_header() {
        let mut m = answer();
        m[2] |= 0x02; // TC
        m.truncate(40); // cut inside a record
        let m = Message::parse(&m).unwrap();
        assert!(m.truncated);
        assert!(m.answers.is_empty());
        let mut nx = answer()[..12].to_vec();
        nx[3] = 0x83; // NXDOMAIN
        nx[4..12].fill(0);
        let m = Message::parse(&nx).unwrap();
        assert_eq!(m.rcode.to_string(), "Non-Existent Domain");
        assert_eq!(Rcode(12).to_string(), "response code 12");
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        let header = [0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        // an answer whose owner points at itself
        let mut m = header.to_vec();
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
        let e = Message::parse(&m).unwrap_err();
        assert!(e.contains("does not point back"), "{e}");
        // two labels pointing at each other: a at 12 -> 16, b at 16 -> 12
        let mut m = header.to_vec();
        m.extend_from_slice(&[1, b'a', 0xc0, 16, 1, b'b', 0xc0, 12]);
        assert!(Message::parse(&m).is_err());
        // a pointer forward
        let mut m = header.to_vec();
        m.extend_from_slice(&[0xc0, 14, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert!(Message::parse(&m).is_err());
        // a label type other than a length or a pointer
        let mut m = header.to_vec();
        m.extend_from_slice(&[0x41, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        let e = Message::parse(&m).unwrap_err();
        assert!(e.contains("unknown type"), "{e}");
        // data longer than the record says
        let mut m = header.to_vec();
        m.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5]);
        let e = Message::parse(&m).unwrap_err();
        assert!(e.contains("data left over: 1 of 5 bytes"), "{e}");
    }

    /// A message whose second record's owner is `labels` one-letter
    /// labels, each a pointer away from the next, kept in the first
    /// record's data.
    fn chained(labels: usize) -> Vec<u8> {
        let mut m = vec![0, 1, 0x80, 0, 0, 0, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(&[0, 0, 10, 0, 1, 0, 0, 0, 0]); // the root, NULL, IN, TTL
        let start = m.len() + 2;
        let mut chain = Vec::new();
        let mut prev = 12u16; // the root
        for _ in 0..labels {
            let at = (start + chain.len()) as u16;
            chain.extend_from_slice(&[1, b'x']);
            chain.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            prev = at;
        }
        m.extend_from_slice(&(chain.len() as u16).to_be_bytes());
        m.extend_from_slice(&chain);
        m.extend_from_slice(&(0xc000 | prev).to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
        m
    }

    #[test]
    fn a_name_built_of_pointers_stops_at_255_bytes() {
        let m = Message::parse(&chained(127)).unwrap();
        assert_eq!(m.answers[1].name.wire.len(), 255);
        assert_eq!(m.answers[1].data.to_string(), "1.2.3.4");
        let e = Message::parse(&chained(128)).unwrap_err();
        assert!(e.contains("longer than 255"), "{e}");
    }

    #[test]
    fn malformed_input_never_panics() {
        let good = answer();
        for n in 0..good.len() {
            let _ = Message::parse(&good[..n]);
        }
        let mut m = good.clone();
        for i in 0..good.len() {
            for v in [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc1, 0xff] {
                m[i] = v;
                let _ = Message::parse(&m);
            }
            m[i] = good[i];
        }
        assert!(Message::parse(&good).is_ok());
    }
}
