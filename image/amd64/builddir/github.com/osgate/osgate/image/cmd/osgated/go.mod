module gokrazy/build/github.com/osgate/osgate

go 1.26.0

replace github.com/osgate/osgate => ../../../../../../../../..

require github.com/osgate/osgate v0.0.0-00010101000000-000000000000
