//! The code index held between counts. A process that answers many counts (the server) reads the
//! linked vault and builds the index of its population once per data version, its postings on the
//! engine it was given (in this process by default), and evaluates each new definition on it; a
//! change of the data (a receipt, a link run, a request to stop or a purge) makes the next count
//! build it again. A command that asks one count builds it once, as it read the vault before.

use std::sync::{Arc, Mutex, PoisonError};

use tokumei_model::postings::{InProcess, PostingsEngine, SharedPostings};
use tokumei_vault::catalog::Catalog;
use tokumei_vault::home::DataKey;
use tokumei_vault::Home;

use crate::index::Index;
use crate::{vault, FeasibilityError};

/// The index of the latest data version counted, and where its postings are built.
#[derive(Default)]
pub struct Counter {
    engine: Option<SharedPostings>,
    held: Mutex<Option<(String, Arc<Index>)>>,
}

impl Counter {
    /// A counter whose postings are built by `engine` (in this process when `None`).
    pub fn new(engine: Option<SharedPostings>) -> Counter {
        Counter {
            engine,
            held: Mutex::default(),
        }
    }

    /// The index of the data at `version`: the one held, or one built from the vault.
    pub(crate) fn index(
        &self,
        home: &Home,
        key: &DataKey,
        catalog: &Catalog,
        version: &str,
    ) -> Result<Arc<Index>, FeasibilityError> {
        self.held_or_built(version, |engine| {
            let population = {
                let linked = tokumei_link::linked::LinkedVault::read(home, key, catalog)?;
                vault::population(&linked, catalog, key)?.0
            };
            Ok(Index::build_with(population, engine)?)
        })
    }

    /// The index held for `version`, or the one `build` makes with the counter's engine (one build
    /// at a time; the index of an older version let go first).
    fn held_or_built(
        &self,
        version: &str,
        build: impl FnOnce(&dyn PostingsEngine) -> Result<Index, FeasibilityError>,
    ) -> Result<Arc<Index>, FeasibilityError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((v, index)) = held.as_ref() {
            if v == version {
                return Ok(index.clone());
            }
        }
        *held = None;
        let index = Arc::new(match &self.engine {
            Some(e) => build(e.0.as_ref())?,
            None => build(&InProcess)?,
        });
        *held = Some((version.to_string(), index.clone()));
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::evaluate::{Facts, Population};

    fn people(n: usize) -> Population {
        Population {
            persons: vec![Facts::default(); n],
        }
    }

    #[test]
    fn the_index_is_held_for_its_data_version_and_built_again_for_another() {
        let counter = Counter::default();
        let build = |n| move |e: &dyn PostingsEngine| Ok(Index::build_with(people(n), e)?);
        let first = counter.held_or_built("v1", build(1)).expect("built");
        let again = counter
            .held_or_built("v1", |_| {
                Err(FeasibilityError::Policy("not built again".into()))
            })
            .expect("held");
        assert!(Arc::ptr_eq(&first, &again));
        let next = counter.held_or_built("v2", build(2)).expect("built again");
        assert_eq!(next.population().persons.len(), 2);
        // A build that fails leaves nothing held: the next count builds again.
        let failed = counter.held_or_built("v3", |_| Err(FeasibilityError::Policy("x".into())));
        assert!(failed.is_err());
        let v2 = counter.held_or_built("v2", build(3)).expect("built");
        assert_eq!(v2.population().persons.len(), 3);
    }
}
