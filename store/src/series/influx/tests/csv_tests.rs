//! The annotated CSV parser on the documented response shapes, and never a panic.

use super::*;

// The first example of the InfluxDB v2 "Annotated CSV" reference: three tables of one result in one block.
const DOC_ONE_BLOCK: &str = "#group,false,false,true,true,false,false,true,true,true,true\r
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string\r
#default,mean,,,,,,,,,\r
,result,table,_start,_stop,_time,_value,_field,_measurement,host,region\r
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east\r
,,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,59.25,mem,m,B,east\r
,,2,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,52.62,mem,m,C,east\r
";

// Its "Multiple tables and results" example: a second block with another schema (a string `_value`).
const DOC_TWO_BLOCKS: &str = "#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host,region
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:00:00Z,15.43,mem,m,A,east
,,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:00:00Z,59.25,mem,m,B,east

#group,false,false,true,true,true,true,false,false,true,true
#datatype,string,long,string,string,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string
#default,_result,,,,,,,,,
,result,table,_field,_measurement,_start,_stop,_time,_value,host,region
,,3,mem_level,m,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:00:00Z,ok,A,east
,,4,mem_level,m,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:00:00Z,info,B,east
";

#[test]
fn parses_the_documented_single_block() {
    let tables = csv::parse(DOC_ONE_BLOCK).expect("parses");
    assert_eq!(tables.len(), 1);
    let t = &tables[0];
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "",
            "result",
            "table",
            "_start",
            "_stop",
            "_time",
            "_value",
            "_field",
            "_measurement",
            "host",
            "region"
        ]
    );
    assert_eq!(t.columns[6].datatype.as_deref(), Some("double"));
    assert!(t.columns[9].group && !t.columns[6].group);
    assert_eq!(t.rows.len(), 3);
    assert_eq!(t.rows[0][1], "mean", "#default fills the empty result cell");
    let rows: Vec<_> = rows::rows(&tables).collect();
    assert_eq!(rows[1].get("host"), Some("B"));
    assert_eq!(rows[1].value().expect("number"), Some(59.25));
    assert_eq!(
        rows[1].time().expect("time"),
        Some(bydata_schemas::parse_rfc3339("2023-01-01T00:52:00Z").expect("valid"))
    );
    assert_eq!(
        rows[2].tags(),
        [
            ("host".to_owned(), "C".to_owned()),
            ("region".to_owned(), "east".to_owned())
        ]
        .into()
    );
}

#[test]
fn parses_multiple_blocks_with_their_own_schema() {
    let tables = csv::parse(DOC_TWO_BLOCKS).expect("parses");
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[1].column("_value"), Some(8));
    assert_eq!(tables[1].columns[8].datatype.as_deref(), Some("string"));
    let rows: Vec<_> = rows::rows(&tables).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3].get("_value"), Some("info"));
    assert!(rows[3].value().is_err(), "a string value is not a number");
    assert_eq!(rows[3].get("_field"), Some("mem_level"));
}

#[test]
fn empty_results_are_no_tables() {
    for body in ["", "\r\n", "\n\n", "\r\n\r\n"] {
        assert_eq!(csv::parse(body), Ok(Vec::new()), "{body:?}");
    }
    // A table with no rows (annotations and header only) is a table with no rows.
    let header_only = "#datatype,string,long,double\r\n#group,false,false,false\r\n#default,_result,,\r\n,result,table,_value\r\n\r\n";
    let tables = csv::parse(header_only).expect("parses");
    assert_eq!(tables.len(), 1);
    assert!(tables[0].rows.is_empty());
}

#[test]
fn error_tables_become_errors() {
    // The reference's example error encoding.
    let body = "#datatype,string,long\r\n,error,reference\r\n,Failed to parse query,897\r\n";
    assert_eq!(
        csv::parse(body),
        Err(csv::CsvError::Query {
            message: "Failed to parse query".to_owned(),
            reference: "897".to_owned()
        })
    );
    // After partial results (HTTP 200): the error is the next table; the partial results are not returned.
    let partial = format!(
        "{DOC_ONE_BLOCK}\r\n#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,\"panic: runtime error, index out of range\",\r\n"
    );
    match csv::parse(&partial) {
        Err(csv::CsvError::Query { message, reference }) => {
            assert_eq!(message, "panic: runtime error, index out of range");
            assert_eq!(reference, "");
        }
        other => panic!("expected a query error, got {other:?}"),
    }
}

#[test]
fn quoting_defaults_and_malformed_input() {
    let body = "#datatype,string,long,string,double\n#default,_result,,none,\n,result,table,note,_value\n,,0,\"a,b\nc \"\"q\"\"\",1.5\n,,0,,2\n";
    let tables = csv::parse(body).expect("parses");
    assert_eq!(tables[0].rows[0][3], "a,b\nc \"q\"");
    assert_eq!(tables[0].rows[1][3], "none");
    let short_row = ",result,table,_value\n,,0\n";
    assert!(matches!(
        csv::parse(short_row),
        Err(csv::CsvError::Malformed { record: 2, .. })
    ));
    let bad_annotation = "#datatype,string\n,result,table,_value\n";
    assert!(matches!(
        csv::parse(bad_annotation),
        Err(csv::CsvError::Malformed { record: 2, .. })
    ));
}

#[test]
fn values_by_datatype() {
    let body = "#datatype,string,long,dateTime:RFC3339Nano,long\n,result,table,_time,_value\n,,0,2026-11-22T10:00:00.000000001Z,-42\n,,0,,7\n,,0,2026-11-22T10:00:01Z,\n\n#datatype,string,long,dateTime:RFC3339,unsignedLong\n,result,table,_time,_value\n,,1,1970-01-01T00:00:00Z,18446744073709551615\n\n#datatype,string,long,dateTime:RFC3339,boolean\n,result,table,_time,_value\n,,2,1969-12-31T23:59:59Z,true\n";
    let tables = csv::parse(body).expect("parses");
    let points: Vec<_> = rows::rows(&tables)
        .map(|r| r.point().expect("readable"))
        .collect();
    assert_eq!(
        points,
        [
            Some((1_795_341_600_000_000_001, -42.0)),
            None,
            None,
            Some((0, 18_446_744_073_709_551_615.0)),
            Some((-1_000_000_000, 1.0)),
        ]
    );
}

#[test]
fn a_tag_called_table_or_result_is_still_a_tag() {
    let body =
        ",result,table,_time,_value,table,result\n,_result,0,1970-01-01T00:00:00Z,1,kitchen,ok\n";
    let tables = csv::parse(body).expect("parses");
    let row = rows::rows(&tables).next().expect("a row");
    assert_eq!(
        row.tags(),
        [
            ("result".to_owned(), "ok".to_owned()),
            ("table".to_owned(), "kitchen".to_owned())
        ]
        .into()
    );
}

proptest! {
    #[test]
    fn csv_parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        if let Ok(tables) = csv::parse(&text) {
            for row in rows::rows(&tables) {
                let _ = (row.tags(), row.point());
            }
        }
    }

    #[test]
    fn csv_parser_never_panics_on_near_misses(
        text in "(#datatype|#group|#default|,result|,table|,_value|,_time|,error|,reference|,|\"|\r|\n|double|long|string|true|false|1\\.5|2026-11-22T10:00:00Z|x){0,40}"
    ) {
        if let Ok(tables) = csv::parse(&text) {
            for table in &tables {
                for r in &table.rows {
                    prop_assert_eq!(r.len(), table.columns.len());
                }
            }
            for row in rows::rows(&tables) {
                let _ = (row.tags(), row.point());
            }
        }
    }
}
