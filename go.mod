module github.com/licensor/licensor

go 1.26.8
