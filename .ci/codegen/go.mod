// The oapi-codegen check of CI (.ci/api-ecosystem): a module of its own, so
// that the generated client's runtime never enters licensor's go.mod. The
// package licclient is generated into a copy of this folder from the
// document a running server serves; it is not committed.
module licensor.invalid/codegen

go 1.26.0

require github.com/oapi-codegen/runtime v1.9.0

require (
	github.com/apapsch/go-jsonmerge/v2 v2.0.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
)
