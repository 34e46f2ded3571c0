//! Files built from scratch (the synthetic region's images, test files): values set in tag order,
//! text encoded in the data set's repertoire, and the file meta group made from the SOP class and
//! instance. Explicit VR little endian only: numbers are written little endian.

use dicom_core::{Tag, VR};

use crate::charset::{CharsetError, Repertoire};
use crate::model::{text_kind, DataSet, DicomFile, Element, Syntax, Value};

/// Explicit VR Little Endian (1.2.840.10008.1.2.1).
pub const EXPLICIT_LITTLE: &str = "1.2.840.10008.1.2.1";

impl DataSet {
    /// Sets an element, keeping tag order (an element of the same tag is replaced).
    pub fn insert(&mut self, e: Element) {
        match self.elements.binary_search_by_key(&e.tag, |x| x.tag) {
            Ok(i) => self.elements[i] = e,
            Err(i) => self.elements.insert(i, e),
        }
    }

    /// Sets a value in the default repertoire (UIDs, code strings, dates, times, numbers as text).
    pub fn put_str(&mut self, tag: Tag, vr: VR, value: &str) {
        self.put(tag, vr, value.as_bytes().to_vec());
    }

    /// Sets a text value (SH, LO, PN, ST, LT ...) encoded in `rep`; other VRs are written as
    /// their bytes. An error if the repertoire cannot hold a character.
    pub fn put_text(
        &mut self,
        tag: Tag,
        vr: VR,
        value: &str,
        rep: &Repertoire,
    ) -> Result<(), CharsetError> {
        let bytes = match text_kind(vr) {
            Some(kind) => rep.encode(value, kind)?,
            None => value.as_bytes().to_vec(),
        };
        self.put(tag, vr, bytes);
        Ok(())
    }

    /// Sets unsigned 16-bit values (US), little endian.
    pub fn put_u16(&mut self, tag: Tag, values: &[u16]) {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.put(tag, VR::US, bytes);
    }

    /// Sets a sequence of items, with defined lengths.
    pub fn put_items(&mut self, tag: Tag, items: Vec<DataSet>) {
        self.insert(Element {
            tag,
            vr: VR::SQ,
            value: Value::Items {
                items,
                defined: true,
            },
        });
    }
}

impl DicomFile {
    /// A file in Explicit VR Little Endian with its meta group made from the data set's SOP
    /// Class and Instance UIDs (0008,0016 and 0008,0018) and the implementation's class UID
    /// and version name.
    pub fn explicit_little(body: DataSet, implementation_uid: &str, version: &str) -> DicomFile {
        let mut meta = DataSet::default();
        meta.put(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
        let uid = |t: u16| body.text_ascii(Tag(0x0008, t)).unwrap_or_default();
        meta.put_str(Tag(0x0002, 0x0002), VR::UI, &uid(0x0016));
        meta.put_str(Tag(0x0002, 0x0003), VR::UI, &uid(0x0018));
        meta.put_str(Tag(0x0002, 0x0010), VR::UI, EXPLICIT_LITTLE);
        meta.put_str(Tag(0x0002, 0x0012), VR::UI, implementation_uid);
        meta.put_str(Tag(0x0002, 0x0013), VR::SH, version);
        DicomFile {
            meta,
            syntax: Syntax::ExplicitLittle,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_file_reads_back_with_its_text() {
        let rep = Repertoire::parse("\\ISO 2022 IR 87").expect("charset");
        let mut body = DataSet::default();
        body.put_str(Tag(0x0010, 0x0020), VR::LO, "00123456");
        body.put_str(Tag(0x0008, 0x0005), VR::CS, "\\ISO 2022 IR 87");
        body.put_str(Tag(0x0008, 0x0018), VR::UI, "2.25.1234");
        body.put_str(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.7");
        body.put_text(
            Tag(0x0010, 0x0010),
            VR::PN,
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
            &rep,
        )
        .expect("name");
        let mut item = DataSet::default();
        item.put_str(Tag(0x0008, 0x0050), VR::SH, "A1");
        body.put_items(Tag(0x0040, 0x0275), vec![item]);
        body.put_u16(Tag(0x0028, 0x0010), &[4]);
        body.insert(Element {
            tag: Tag(0x7fe0, 0x0010),
            vr: VR::OW,
            value: Value::Bytes(vec![0; 8]),
        });
        let tags: Vec<Tag> = body.elements.iter().map(|e| e.tag).collect();
        let mut sorted = tags.clone();
        sorted.sort();
        assert_eq!(tags, sorted);
        let file = DicomFile::explicit_little(body, "2.25.99", "TEST");
        let bytes = crate::write::to_bytes(&file).expect("write");
        let back = crate::parse(&bytes, &crate::Limits::default()).expect("read");
        assert_eq!(back.syntax, Syntax::ExplicitLittle);
        assert_eq!(
            back.meta.text_ascii(Tag(0x0002, 0x0003)).as_deref(),
            Some("2.25.1234")
        );
        let rep = back.body.repertoire(&Repertoire::default()).expect("rep");
        let name = back.body.text(Tag(0x0010, 0x0010), &rep).expect("name");
        assert_eq!(
            name.expect("decoded"),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
        assert!(Repertoire::default()
            .encode("鷗", crate::charset::Text::PersonNames)
            .is_err());
    }
}
