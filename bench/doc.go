// Package bench holds the side-by-side performance scenarios of akoutpost:
// load tools and scripts that measure the outpost against a baseline in the
// same run. Nothing here is imported by the library.
package bench
