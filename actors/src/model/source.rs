//! The object a spec was read from, carried to the adapters untouched.
//!
//! The core never looks inside (it has no Kubernetes types); the adapters
//! get, with every port call, the very Canary object whose generation the
//! actor decided on, so none of them acts on a newer or older copy from a
//! cache.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// An opaque source object and its generation.
#[derive(Clone, Default)]
pub struct Source {
    generation: i64,
    object: Option<Arc<dyn Any + Send + Sync>>,
}

impl Source {
    pub fn new<T: Any + Send + Sync>(generation: i64, object: Arc<T>) -> Source {
        Source {
            generation,
            object: Some(object),
        }
    }

    /// `metadata.generation` of the object (0 when there is none).
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The object, if it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.object.clone()?.downcast::<T>().ok()
    }
}

/// Two specs read from the same generation are the same spec: a status or
/// metadata update of the object is not a change to drive.
impl PartialEq for Source {
    fn eq(&self, other: &Source) -> bool {
        self.generation == other.generation
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("generation", &self.generation)
            .field("object", &self.object.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_by_generation_and_hands_back_the_object() {
        let a = Source::new(3, Arc::new("spec v3".to_string()));
        let b = Source::new(3, Arc::new("same generation, other copy".to_string()));
        let c = Source::new(4, Arc::new("spec v4".to_string()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a.get::<String>().as_deref().map(String::as_str),
            Some("spec v3")
        );
        assert!(a.get::<u32>().is_none());
        assert!(Source::default().get::<String>().is_none());
    }
}
