//! kube-runtime watches of a Canary, its Events and its workloads, merged
//! into one stream of changes, and the state they add up to.

use std::collections::BTreeMap;

use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Event;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::canary::{Canary, TargetKind, TargetRef};

use super::Session;
use super::events::{self, EventLine};
use super::workloads::{self, Workload};

/// One change seen by a watch.
#[derive(Debug)]
pub enum Change {
    /// The Canary, `None` once deleted.
    Canary(Option<Box<Canary>>),
    /// An Event added or changed (`Some`) or deleted, by name.
    Event(String, Option<EventLine>),
    /// The Events after a (re)list.
    Events(BTreeMap<String, EventLine>),
    Primary(Option<Box<Workload>>),
    Target(Option<Box<Workload>>),
    /// A watch failed; it retries with a backoff.
    Error(String),
}

/// What the watches have shown so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// `None` until the first answer, or once deleted.
    pub canary: Option<Canary>,
    pub events: BTreeMap<String, EventLine>,
    pub primary: Option<Workload>,
    pub target: Option<Workload>,
    /// Which watches have answered at least once.
    pub seen: Seen,
}

/// The watches that have answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub canary: bool,
    pub events: bool,
    pub primary: bool,
    pub target: bool,
}

impl Observed {
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Canary(c) => {
                self.canary = c.map(|c| *c);
                self.seen.canary = true;
            }
            Change::Event(name, Some(line)) => {
                self.events.insert(name, line);
            }
            Change::Event(name, None) => {
                self.events.remove(&name);
            }
            Change::Events(all) => {
                self.events = all;
                self.seen.events = true;
            }
            Change::Primary(w) => {
                self.primary = w.map(|w| *w);
                self.seen.primary = true;
            }
            Change::Target(w) => {
                self.target = w.map(|w| *w);
                self.seen.target = true;
            }
            Change::Error(_) => {}
        }
    }

    /// Every watch `watched` asks for has answered (workloads only for
    /// the kinds that are watched).
    pub fn ready(&self, watched: Watched, target: &TargetRef) -> bool {
        let workloads = target.kind == TargetKind::Service;
        self.seen.canary
            && (!watched.events || self.seen.events)
            && (!watched.primary || workloads || self.seen.primary)
            && (!watched.target || workloads || self.seen.target)
    }

    /// The Events, oldest first.
    pub fn events(&self) -> Vec<EventLine> {
        events::sorted(self.events.values().cloned().collect())
    }
}

/// What to watch besides the Canary.
#[derive(Clone, Copy, Debug)]
pub struct Watched {
    pub events: bool,
    pub primary: bool,
    pub target: bool,
}

/// The merged changes of the Canary `name` and of what `watched` asks for;
/// watch errors are reported on stderr, not passed on.
pub fn changes(
    session: &Session,
    name: &str,
    target: &TargetRef,
    watched: Watched,
) -> BoxStream<'static, Change> {
    let client = &session.client;
    let ns = &session.namespace;
    let mut streams = vec![single(
        Api::<Canary>::namespaced(client.clone(), ns),
        name,
        |c| Change::Canary(c.map(Box::new)),
    )];
    if watched.events {
        streams.push(event_changes(Api::namespaced(client.clone(), ns), name));
    }
    let mut add = |wanted: bool, workload: String, wrap: fn(Option<Box<Workload>>) -> Change| {
        if !wanted {
            return;
        }
        let stream = match target.kind {
            TargetKind::Deployment => single(
                Api::<Deployment>::namespaced(client.clone(), ns),
                &workload,
                move |d| wrap(d.map(|d| Box::new(Workload::Deployment(d)))),
            ),
            TargetKind::DaemonSet => single(
                Api::<DaemonSet>::namespaced(client.clone(), ns),
                &workload,
                move |d| wrap(d.map(|d| Box::new(Workload::DaemonSet(d)))),
            ),
            TargetKind::Service => return,
        };
        streams.push(stream);
    };
    add(
        watched.primary,
        workloads::primary_name(target),
        Change::Primary,
    );
    add(watched.target, target.name.clone(), Change::Target);
    // A failing watch retries with a backoff; say so once per distinct
    // error, on stderr, and leave the callers only the changes.
    let mut last_error = String::new();
    futures::stream::select_all(streams)
        .filter_map(move |change| {
            futures::future::ready(match change {
                Change::Error(e) => {
                    if e != last_error {
                        eprintln!("serin: watch: {e} (retrying)");
                        last_error = e;
                    }
                    None
                }
                change => Some(change),
            })
        })
        .boxed()
}

/// The object `name` of `api`: `Some` on every change, `None` when it is
/// deleted or a (re)list does not find it.
fn single<K, F>(api: Api<K>, name: &str, wrap: F) -> BoxStream<'static, Change>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: Fn(Option<K>) -> Change + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut listed = false;
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(move |event| {
            let change = match event {
                Ok(WatchEvent::Apply(k) | WatchEvent::InitApply(k)) => {
                    listed = true;
                    Some(wrap(Some(k)))
                }
                Ok(WatchEvent::Delete(_)) => Some(wrap(None)),
                Ok(WatchEvent::Init) => {
                    listed = false;
                    None
                }
                Ok(WatchEvent::InitDone) => (!listed).then(|| wrap(None)),
                Err(e) => Some(Change::Error(e.to_string())),
            };
            futures::future::ready(change)
        })
        .boxed()
}

/// The Canary's Events: the whole set after each (re)list, then each change.
fn event_changes(api: Api<Event>, name: &str) -> BoxStream<'static, Change> {
    let config = watcher::Config::default().fields(&events::selector(name));
    let mut listing: Option<BTreeMap<String, EventLine>> = None;
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(move |event| {
            let change = match event {
                Ok(WatchEvent::Init) => {
                    listing = Some(BTreeMap::new());
                    None
                }
                Ok(WatchEvent::InitApply(e)) => {
                    if let Some(list) = listing.as_mut() {
                        list.insert(e.name_any(), EventLine::of(&e));
                    }
                    None
                }
                Ok(WatchEvent::InitDone) => {
                    Some(Change::Events(listing.take().unwrap_or_default()))
                }
                Ok(WatchEvent::Apply(e)) => {
                    Some(Change::Event(e.name_any(), Some(EventLine::of(&e))))
                }
                Ok(WatchEvent::Delete(e)) => Some(Change::Event(e.name_any(), None)),
                Err(e) => Some(Change::Error(e.to_string())),
            };
            futures::future::ready(change)
        })
        .boxed()
}
