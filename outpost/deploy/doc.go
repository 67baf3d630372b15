// Package deploy renders the objects that run an outpost: Kubernetes
// manifests and a docker-compose file, built from the outpost's settings the
// way authentik's own Docker and Kubernetes controllers build them, so an
// outpost deployed by hand looks the same as one authentik manages.
//
// [Kubernetes] writes a multi-document YAML holding, in authentik's
// reconcile order, a Secret, a Deployment, a Service, a metrics Service, a
// Prometheus ServiceMonitor and, for proxy outposts, an Ingress, a Gateway
// API HTTPRoute and a Traefik Middleware. Each object can be dropped with the
// outpost setting kubernetes_disabled_components and changed with
// kubernetes_json_patches (RFC 6902), as in authentik. Objects of custom
// resource definitions (ServiceMonitor, HTTPRoute, Middleware) are always
// rendered because a manifest cannot ask the cluster which definitions it
// has; disable them when the cluster lacks the definition.
//
// [Compose] writes a docker-compose file with one service that carries the
// image, container name, environment, labels, ports, network, restart policy
// and health check authentik's Docker controller gives the container.
//
// Names come from the setting object_naming_template, a Python %-format
// string with the placeholders %(name)s (the slugified outpost name) and
// %(uuid)s (the outpost UUID as hex). The image is the setting
// container_image, or authentik's image for the outpost type and version.
// Set container_image to run this project's image instead.
//
// Where akoutpost departs from authentik it says so on the field or function
// concerned: Kubernetes names and label values are always DNS-safe, the
// Deployment has health probes, and the metrics port is published only
// through the separate metrics Service the ServiceMonitor scrapes.
//
// The package does no I/O and logs nothing; the outpost token it renders
// into the Secret and the compose environment never appears in its errors.
package deploy
