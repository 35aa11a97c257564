use super::*;

fn problems(text: &str) -> Vec<(usize, String)> {
    parse(text)
        .expect_err("problems")
        .into_iter()
        .map(|p| (p.line, p.column))
        .collect()
}

#[test]
fn a_good_file_gives_its_rows() {
    let rows = parse(
        "\u{feff}id,name,domain,lat,lon,tag:room,codec\r\n\
         room-1,Room 1,building,56.15,10.2,1.12,json\r\n\
         \r\n\
         ,\"Room 2, east\",building,,,,\n",
    )
    .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id.as_ref().map(DeviceId::as_str), Some("room-1"));
    assert_eq!(
        rows[0].tags.values().next().map(String::as_str),
        Some("1.12")
    );
    assert_eq!(rows[0].codec, Codec::Json);
    assert_eq!(rows[1].line, 4);
    assert_eq!(rows[1].name, "Room 2, east");
    assert_eq!(rows[1].id, None);
    assert!(rows[1].tags.is_empty() && rows[1].location.is_none());
}

#[test]
fn danish_excel_semicolons_and_decimal_commas() {
    let rows = parse("name;domain;lat;lon\nMåler;energy;56,15;10,2\n").expect("rows");
    assert_eq!(rows[0].location.map(|l| l.lat()), Some(56.15));
}

#[test]
fn every_bad_row_is_named_with_its_column() {
    let text = "id,name,domain,lat,lon,transport\n\
                ok-1,A,energy,56,10,mqtt\n\
                Bad Id,B,energy,56,10,\n\
                ok-2,C,energi,95,10,lorawan\n\
                ok-1,D,energy,,,\n\
                ok-3,E,energy\n\
                ok-4,,water,56,x,\n";
    assert_eq!(
        problems(text),
        vec![
            (3, "id".into()),
            (4, "domain".into()),
            (4, "transport".into()),
            (4, "lat".into()),
            (5, "id".into()),
            (6, String::new()),
            (7, "name".into()),
            (7, "lon".into()),
        ]
    );
}

#[test]
fn header_problems() {
    assert_eq!(
        problems("id,nam,tag:device,tag:bad key,lat\n"),
        vec![
            (1, "nam".into()),
            (1, "tag:device".into()),
            (1, "tag:bad key".into()),
            (1, "name".into()),
            (1, "domain".into()),
            (1, "lat".into()),
        ]
    );
    assert_eq!(problems(""), vec![(1, String::new())]);
    assert_eq!(problems("name,domain\n"), vec![(2, String::new())]);
}

#[test]
fn quoting() {
    let rows = parse("name,domain\n\"say \"\"hi\"\"\nthere\",air\nnext,air\n").expect("rows");
    assert_eq!(rows[0].name, "say \"hi\"\nthere");
    assert_eq!(rows[1].line, 4, "a line break inside quotes is counted");
    assert_eq!(
        problems("name,domain\n\"open,air\n"),
        vec![(2, String::new())]
    );
    assert_eq!(
        problems("name,domain\na\"b,air\n"),
        vec![(2, String::new())]
    );
    assert_eq!(
        problems("name,domain\n\"a\"b,air\n"),
        vec![(2, String::new())]
    );
}

#[test]
fn limits() {
    let mut text = String::from("name,domain\n");
    for i in 0..=MAX_ROWS {
        text.push_str(&format!("d{i},air\n"));
    }
    let p = parse(&text).expect_err("too many");
    assert!(p[0].message.contains("at most 500"), "{p:?}");
    let big = format!("name,domain\n{}", "x".repeat(MAX_BYTES));
    assert!(
        parse(&big).expect_err("too big")[0]
            .message
            .contains("bytes")
    );
}

proptest::proptest! {
    #[test]
    fn never_panics_on_any_text(text in "(?s).{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_csv_like_text(text in "[a-z0-9:,;\"\r\n .\u{feff}-]{0,300}") {
        let _ = parse(&format!("id,name,domain,lat,lon,tag:room,codec,transport\n{text}"));
    }

    #[test]
    fn a_quoted_name_reads_back(name in "[^\u{0}]{1,60}") {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let trimmed = name.trim();
        match parse(&format!("name,domain\n{quoted},air\n")) {
            Ok(rows) => proptest::prop_assert_eq!(rows[0].name.as_str(), trimmed),
            Err(p) => proptest::prop_assert!(trimmed.is_empty(), "{:?}", p),
        }
    }
}
