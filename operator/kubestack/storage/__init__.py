"""Glance and Cinder on Kubernetes: Images as golden PVCs filled by CDI DataVolumes, Volumes as
PVCs (DataVolumes when copied from something), VolumeSnapshots as Cinder snapshots.

Pure modules (no API calls): `names` (deterministic child names), `refs` (who references what,
who may see what), `rendering` (DataVolume manifests and KubeVirt disk/volume entries),
`state` (Glance/Cinder status from the CDI/PVC objects), `quota` (Cinder's volume quota).
`disks` is the one module with effects: `ensure_server_disks`, called by the Server
controller, creates a server's root disk / boot volume and answers whether they are ready.

Where the data lives
--------------------
* An Image's data is the PVC `<image>-image` in the Image's namespace, filled by the DataVolume
  of the same name (CDI import from http / registry, upload, or a clone of a volume's or a
  server's root disk PVC). It never moves: a server in another project that may boot the image
  (public, community, or shared with that project) gets a CDI cross-namespace clone
  (`source.pvc: {namespace, name}`) into its own namespace. The operator checks visibility
  before it renders that clone; on a real cluster CDI additionally requires the operator's
  service account to hold `create` on `datavolumes/source` in the image's namespace.
* A Volume's data is the PVC `<volume>-volume` (DataVolume of the same name).
* A server's root disk is the DataVolume/PVC `<server>-root`, cloned from the golden PVC; a
  rebuild clones a new one, `<server>-root-<key>` (`names.root_disk`), records it in the
  Server's `status.rootDisk` and deletes the earlier one once the VM no longer uses it (unless
  the server retains its root disks).
"""
