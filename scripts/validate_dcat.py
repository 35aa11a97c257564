#!/usr/bin/env python3
"""Validate a DCAT-AP-DK catalog (JSON-LD) against the profile's SHACL shapes.

Usage: validate_dcat.py <catalog.jsonld> <shapes.ttl>

Runs pyshacl with the shapes, prints every result, and exits 1 if any has severity sh:Violation (warnings and
infos are printed and allowed). It then checks the mandatory properties once more with SPARQL, so a catalog
that is empty where it must not be fails even if a shape were missing, and prints what it counted.

Needs rdflib >= 7 (parses JSON-LD itself) and pyshacl.
"""
import sys

import pyshacl
import rdflib
from rdflib.namespace import RDF, SH

# Per class, the properties it must have (checked again with SPARQL, beside the shapes).
MANDATORY = {
    "dcat:Catalog": ["dct:title", "dct:description", "dct:publisher", "dcat:dataset"],
    "dcat:Dataset": ["dct:title", "dct:description"],
    "dcat:Distribution": ["dcat:accessURL", "dct:license", "dcat:mediaType", "spdx:checksum"],
    "foaf:Agent": ["foaf:name"],
    "spdx:Checksum": ["spdx:algorithm", "spdx:checksumValue"],
}
PREFIXES = """
PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
PREFIX spdx: <http://spdx.org/rdf/terms#>
"""


def main(argv):
    args = argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    catalog_path, shapes_path = args

    data = rdflib.Graph().parse(catalog_path, format="json-ld")
    shapes = rdflib.Graph().parse(shapes_path, format="turtle")
    if len(data) == 0:
        print(f"{catalog_path}: no triples (not JSON-LD, or no @context?)")
        return 1

    _conforms, report, _text = pyshacl.validate(
        data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True
    )

    violations = 0
    others = 0
    results = sorted(
        report.subjects(RDF.type, SH.ValidationResult),
        key=lambda r: (str(report.value(r, SH.focusNode)), str(report.value(r, SH.resultPath))),
    )
    for r in results:
        severity = report.value(r, SH.resultSeverity)
        line = "{} focus={} path={} value={} message={}".format(
            severity.split("#")[-1],
            report.value(r, SH.focusNode),
            report.value(r, SH.resultPath),
            report.value(r, SH.value),
            report.value(r, SH.resultMessage),
        )
        if severity == SH.Violation:
            violations += 1
        else:
            others += 1
        print(line)

    missing = 0
    counts = {}
    for cls, props in MANDATORY.items():
        counts[cls] = len(set(data.query(f"{PREFIXES} SELECT ?s WHERE {{ ?s a {cls} }}")))
        for prop in props:
            rows = data.query(
                f"{PREFIXES} SELECT ?s WHERE {{ ?s a {cls} FILTER NOT EXISTS {{ ?s {prop} ?o }} }}"
            )
            for (s,) in rows:
                missing += 1
                print(f"Missing: {cls} {s} has no {prop}")
    for cls in ["dcat:Catalog", "dcat:Dataset", "dcat:Distribution"]:
        if counts[cls] == 0:
            missing += 1
            print(f"Missing: no {cls} at all")

    print(
        f"checked {len(data)} triples: {counts['dcat:Catalog']} catalog(s), {counts['dcat:Dataset']} datasets, "
        f"{counts['dcat:Distribution']} distributions, {counts['foaf:Agent']} agents, "
        f"{counts['spdx:Checksum']} checksums; mandatory properties "
        + "; ".join(f"{c}: {', '.join(p)}" for c, p in MANDATORY.items())
    )
    print(f"{violations} violations, {others} warnings/infos, {missing} missing mandatory properties")
    return 1 if violations or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
