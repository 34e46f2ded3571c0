//! Postings: for each term (a code in a calendar year, say), the set of persons holding it, as a
//! compressed bitmap (`roaring`) of the persons' positions. The feasibility counts' code index is
//! made of them.
//!
//! [`PostingsEngine`] is where they are built: in this process ([`postings`], [`InProcess`]), or on
//! a distributed engine that reads the same (person, term) rows on its workers and hands back the
//! same bitmaps.

use roaring::RoaringBitmap;

/// Why postings could not be built.
#[derive(Debug, thiserror::Error)]
#[error("postings: {0}")]
pub struct PostingsError(pub String);

/// Where postings are built.
pub trait PostingsEngine: Sync {
    /// The persons holding each of `terms` terms, from (person, term) rows: equal to
    /// [`postings`]'s. A row naming a term at or past `terms` is an error.
    fn postings(
        &self,
        terms: u32,
        rows: &mut dyn Iterator<Item = (u32, u32)>,
    ) -> Result<Vec<RoaringBitmap>, PostingsError>;
}

/// A postings engine shared by the work that uses it (a server's counts, a command's).
#[derive(Clone)]
pub struct SharedPostings(pub std::sync::Arc<dyn PostingsEngine + Send>);

impl std::fmt::Debug for SharedPostings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedPostings")
    }
}

/// The postings of (person, term) rows in this process; `None` when a row names a term at or past
/// `terms`.
pub fn postings(
    terms: u32,
    rows: &mut dyn Iterator<Item = (u32, u32)>,
) -> Option<Vec<RoaringBitmap>> {
    let mut out = vec![RoaringBitmap::new(); terms as usize];
    for (person, term) in rows {
        out.get_mut(term as usize)?.insert(person);
    }
    Some(out)
}

/// Postings built in this process.
pub struct InProcess;

impl PostingsEngine for InProcess {
    fn postings(
        &self,
        terms: u32,
        rows: &mut dyn Iterator<Item = (u32, u32)>,
    ) -> Result<Vec<RoaringBitmap>, PostingsError> {
        postings(terms, rows).ok_or_else(|| PostingsError("a row names an unknown term".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_row_is_in_its_terms_bitmap_and_nothing_else(
            rows in proptest::collection::vec((0u32..5_000_000, 0u32..20), 0..400)
        ) {
            let got = postings(20, &mut rows.iter().copied()).expect("terms in range");
            prop_assert_eq!(got.len(), 20);
            for &(p, t) in &rows {
                prop_assert!(got[t as usize].contains(p));
            }
            let mut distinct = rows.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let total: u64 = got.iter().map(RoaringBitmap::len).sum();
            prop_assert_eq!(total, distinct.len() as u64);
        }
    }

    #[test]
    fn a_row_past_the_terms_is_refused() {
        assert!(postings(2, &mut [(1, 0), (7, 2)].into_iter()).is_none());
        let err = InProcess.postings(2, &mut [(7, 2)].into_iter());
        assert!(err.is_err());
        assert_eq!(
            InProcess
                .postings(0, &mut std::iter::empty())
                .map(|v| v.len())
                .ok(),
            Some(0)
        );
    }
}
