//! A map bounded by generations, for the store's caches: entries go into the newer generation
//! until it holds its capacity; it then becomes the older one (the one before it is dropped) and
//! a new one starts. Lookups try the newer first. At most twice the capacity is held, and what
//! was inserted or found recently is what stays.

use alloy::primitives::map::{DefaultHashBuilder, HashMap};
use std::hash::{BuildHasher, Hash};

/// Two generations of a map (see the module docs).
pub(super) struct Generations<K, V, S = DefaultHashBuilder> {
    capacity: usize,
    newer: HashMap<K, V, S>,
    older: HashMap<K, V, S>,
}

impl<K, V, S> std::fmt::Debug for Generations<K, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generations")
            .field("capacity", &self.capacity)
            .field("newer", &self.newer.len())
            .field("older", &self.older.len())
            .finish()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Generations<K, V, S> {
    /// Empty, with `capacity` entries per generation.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            newer: HashMap::default(),
            older: HashMap::default(),
        }
    }

    /// The value at `key`, newest generation first.
    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.newer.get(key).or_else(|| self.older.get(key))
    }

    /// Whether the newer generation holds `key`.
    pub(super) fn newer_holds(&self, key: &K) -> bool {
        self.newer.contains_key(key)
    }

    /// Puts `value` at `key` in the newer generation, starting a new one if that fills it.
    pub(super) fn insert(&mut self, key: K, value: V) {
        self.newer.insert(key, value);
        if self.newer.len() >= self.capacity {
            self.older = std::mem::take(&mut self.newer);
        }
    }

    /// Sets `key` to `value` in each generation that holds it; adds nothing.
    pub(super) fn replace_held(&mut self, key: &K, value: V)
    where
        V: Clone,
    {
        for generation in [&mut self.newer, &mut self.older] {
            if let Some(held) = generation.get_mut(key) {
                *held = value.clone();
            }
        }
    }

    /// Drops `key` from both generations.
    pub(super) fn remove(&mut self, key: &K) {
        self.newer.remove(key);
        self.older.remove(key);
    }

    /// Drops everything.
    pub(super) fn clear(&mut self) {
        self.newer.clear();
        self.older.clear();
    }

    /// Entries held, in both generations.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    /// The entries held, older generation first.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.older.iter().chain(&self.newer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_generation_goes_when_the_newer_fills() {
        let mut map = Generations::<u32, u32>::new(4);
        for i in 0..10 {
            map.insert(i, i * 10);
        }
        assert!(map.len() <= 8);
        assert_eq!(map.get(&9), Some(&90));
        assert_eq!(map.get(&0), None, "dropped with its generation");
        assert!(map.newer_holds(&9) && !map.newer_holds(&5));
        map.replace_held(&5, 7);
        map.replace_held(&42, 7);
        assert_eq!((map.get(&5), map.get(&42)), (Some(&7), None));
        map.remove(&5);
        assert_eq!(map.get(&5), None);
        map.clear();
        assert_eq!(map.len(), 0);
    }
}
