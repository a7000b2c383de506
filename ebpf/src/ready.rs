//! The gateway's readiness marker: map `gateway_ready` (`struct rg_gateway_ready`).
//!
//! bpffs holds only BPF objects, so the marker that says "this instance's data plane is up" is
//! a one-entry array. The object defines it without a pinning attribute, so loading the
//! classifier makes it unpinned; the gateway takes it with [`Classifier::ready_marker`],
//! and [`ReadyMarker::publish`] writes its record and pins it at `<pin_dir>/gateway_ready`
//! as the very last step of the gateway's start, once every other map is pinned and the
//! workers run. A graceful stop [`withdraws`](ReadyMarker::withdraw) it first, before the
//! workers stop; so does dropping the marker. A gateway killed without a chance to clean up
//! leaves it pinned: the next gateway removes it ([`remove_stale_ready`]) before it loads.
//!
//! The control process waits for the pin ([`read_ready`]) before it opens the maps.
//!
//! [`Classifier::ready_marker`]: crate::Classifier::ready_marker

use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData, MapError};

use crate::abi::{self, ABI_VERSION, GatewayReady};
use crate::error::{EbpfError, Result, chain, is_permission_denied, map_error};

/// Where the readiness marker of the instance pinned in `pin_dir` lives.
pub fn ready_path(pin_dir: &Path) -> PathBuf {
    pin_dir.join(abi::maps::GATEWAY_READY)
}

/// The gateway's readiness marker, not yet pinned or pinned by [`ReadyMarker::publish`].
/// Dropping it unpins it.
pub struct ReadyMarker {
    map: Map,
    path: PathBuf,
    published: bool,
}

impl std::fmt::Debug for ReadyMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyMarker")
            .field("path", &self.path)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

impl ReadyMarker {
    /// The marker over the loaded, unpinned map `map` of the instance in `pin_dir`.
    pub(crate) fn new(map: Map, pin_dir: &Path) -> ReadyMarker {
        ReadyMarker {
            map,
            path: ready_path(pin_dir),
            published: false,
        }
    }

    /// Where the marker is (or will be) pinned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the marker is pinned now.
    pub fn is_published(&self) -> bool {
        self.published
    }

    /// Writes the record (this build's [`ABI_VERSION`], this process's id, `workers`) and
    /// pins the map: from now on the instance counts as ready. Returns the record written.
    ///
    /// # Errors
    ///
    /// [`EbpfError::Ready`] if the record cannot be written or the map cannot be pinned (a
    /// marker already pinned there means another gateway of the instance is running).
    pub fn publish(&mut self, workers: u32) -> Result<GatewayReady> {
        let record = GatewayReady {
            abi_version: ABI_VERSION,
            pid: std::process::id(),
            workers,
            pad: 0,
        };
        let mut array: Array<&mut MapData, GatewayReady> = Array::try_from(&mut self.map)
            .map_err(|e| map_error("open", abi::maps::GATEWAY_READY, &e))?;
        array
            .set(0, record, 0)
            .map_err(|e| map_error("update", abi::maps::GATEWAY_READY, &e))?;
        if self.published {
            return Ok(record);
        }
        self.map.pin(&self.path).map_err(|e| {
            let exists =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| {
                    e.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists)
                });
            if is_permission_denied(&e) {
                EbpfError::NotRoot {
                    detail: format!("pinning {}: {}", self.path.display(), chain(&e)),
                }
            } else if exists {
                EbpfError::Ready {
                    path: self.path.clone(),
                    detail: "it is already pinned: another `roamgate gateway` runs with this \
                             pin directory"
                        .to_string(),
                }
            } else {
                EbpfError::Ready {
                    path: self.path.clone(),
                    detail: format!("pinning failed: {}", chain(&e)),
                }
            }
        })?;
        self.published = true;
        Ok(record)
    }

    /// Unpins the marker: from now on the instance no longer counts as ready. Returns whether
    /// it was pinned (by this marker). Idempotent.
    pub fn withdraw(&mut self) -> Result<bool> {
        if !self.published {
            return Ok(false);
        }
        self.published = false;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            // Someone (`roamgate unpin`) removed it already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(EbpfError::Ready {
                path: self.path.clone(),
                detail: format!("unpinning failed: {e}"),
            }),
        }
    }
}

impl Drop for ReadyMarker {
    fn drop(&mut self) {
        if let Err(e) = self.withdraw() {
            tracing::error!(error = %e, "the readiness marker stays pinned");
        }
    }
}

/// The readiness record of the instance in `pin_dir`, or `None` while no marker is pinned
/// there (the gateway has not finished starting, or has stopped).
///
/// # Errors
///
/// [`EbpfError::NotRoot`] without the privilege to open pinned maps; [`EbpfError::Ready`] if
/// something else than a readiness marker of this layout is pinned there.
pub fn read_ready(pin_dir: &Path) -> Result<Option<GatewayReady>> {
    let path = ready_path(pin_dir);
    let data = match MapData::from_pin(&path) {
        Ok(data) => data,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) if is_permission_denied(&e) => {
            return Err(EbpfError::NotRoot {
                detail: format!("opening {}: {}", path.display(), chain(&e)),
            });
        }
        Err(e) => {
            return Err(EbpfError::Ready {
                path,
                detail: format!("it cannot be opened as a map: {}", chain(&e)),
            });
        }
    };
    let incompatible = |e: &MapError| EbpfError::Ready {
        path: path.clone(),
        detail: format!(
            "it is not a readiness marker of this build's map ABI: {}",
            chain(e)
        ),
    };
    let map = Map::from_map_data(data).map_err(|e| incompatible(&e))?;
    let array: Array<MapData, GatewayReady> = Array::try_from(map).map_err(|e| incompatible(&e))?;
    let record = array
        .get(&0, 0)
        .map_err(|e| map_error("read", abi::maps::GATEWAY_READY, &e))?;
    Ok(Some(record))
}

/// Removes a readiness marker left in `pin_dir` by a gateway that did not stop cleanly (and
/// logs whose it was); returns whether there was one. Call it before loading, so that nobody
/// takes the instance for ready while it starts.
pub fn remove_stale_ready(pin_dir: &Path) -> Result<bool> {
    let path = ready_path(pin_dir);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(false);
    }
    let record = read_ready(pin_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            match record {
                Ok(Some(r)) => tracing::warn!(
                    marker = %path.display(),
                    pid = r.pid,
                    abi_version = r.abi_version,
                    "removed the readiness marker of a gateway that did not stop cleanly"
                ),
                _ => tracing::warn!(
                    marker = %path.display(),
                    "removed a stale readiness marker"
                ),
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(EbpfError::NotRoot {
            detail: format!("removing {}: {e}", path.display()),
        }),
        Err(e) => Err(EbpfError::Ready {
            path,
            detail: format!("removing the stale marker failed: {e}"),
        }),
    }
}

fn is_not_found(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}
