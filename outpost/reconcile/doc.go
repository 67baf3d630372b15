// Package reconcile creates, updates and removes the containers that run
// outposts, the way authentik's Docker controller manages outposts through a
// service connection.
//
// [Docker] keeps one container per outpost on a Docker engine matching what
// [deploy.DockerContainer] describes. It marks what it creates with
// [LabelManagedBy] and [LabelConnection], never changes or removes anything
// without those labels, and makes no write when nothing changed.
package reconcile
