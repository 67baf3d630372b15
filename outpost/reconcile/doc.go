// Package reconcile creates, updates and removes the containers and
// Kubernetes objects that run outposts, the way authentik's Docker and
// Kubernetes controllers manage an outpost that names a service connection.
//
// [Docker] keeps one container per outpost on a Docker engine matching what
// [deploy.DockerContainer] describes. [Kubernetes] applies the objects of
// [deploy.KubernetesObjects] with server-side apply under its own field
// manager, skips kinds the cluster does not serve, and deletes what the
// settings no longer ask for. Both mark what they create with
// [LabelManagedBy] and [LabelConnection], never change or remove anything
// without those labels, and make no write when nothing changed.
//
// [Controller] drives them from the core: it polls the outposts and service
// connections, reconciles each outpost that names a connection when it
// changed, after a failure (with backoff) and on an interval, removes what
// belongs to outposts that are gone or moved, and keeps a [Status] that it
// also exports as Prometheus metrics and serves as JSON.
package reconcile
