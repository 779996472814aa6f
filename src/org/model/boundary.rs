//! A unit's optional `boundary` in the organisation file: a GeoJSON geometry
//! (RFC 7946), `Polygon` or `MultiPolygon`, whose positions are `[lon, lat]` in
//! WGS 84. The map draws it (`GET /api/v1/map`) when no tile server is set.

use serde_json::Value;

/// At most this many positions per boundary: a grid's outline is a few dozen.
const MAX_POSITIONS: usize = 10_000;

/// Ok when `b` is a polygon or multipolygon of closed rings of valid positions; else
/// what is wrong, for a person editing the file.
pub fn check(b: &Value) -> Result<(), String> {
    let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
    let coords = b
        .get("coordinates")
        .and_then(Value::as_array)
        .ok_or("a GeoJSON geometry needs `type` and `coordinates`")?;
    let polygons: Vec<&Value> = match kind {
        "Polygon" => vec![b.get("coordinates").unwrap_or(&Value::Null)],
        "MultiPolygon" => coords.iter().collect(),
        other => {
            return Err(format!(
                "`type` must be Polygon or MultiPolygon, not {other:?}"
            ));
        }
    };
    let mut count = 0;
    for poly in polygons {
        let rings = poly
            .as_array()
            .filter(|r| !r.is_empty())
            .ok_or("a polygon is a non-empty array of rings")?;
        for ring in rings {
            let ring = ring
                .as_array()
                .filter(|r| r.len() >= 4)
                .ok_or("a ring is an array of at least 4 positions")?;
            let mut positions = Vec::with_capacity(ring.len());
            for p in ring {
                positions.push(position(p)?);
            }
            if positions.first() != positions.last() {
                return Err("a ring's last position must equal its first".into());
            }
            count += positions.len();
        }
    }
    if count > MAX_POSITIONS {
        return Err(format!("more than {MAX_POSITIONS} positions"));
    }
    Ok(())
}

/// A `[lon, lat]` position.
fn position(p: &Value) -> Result<(f64, f64), String> {
    let a = p.as_array().filter(|a| a.len() >= 2);
    let lon = a.and_then(|a| a[0].as_f64());
    let lat = a.and_then(|a| a[1].as_f64());
    match (lon, lat) {
        (Some(lon), Some(lat))
            if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) =>
        {
            Ok((lon, lat))
        }
        _ => Err(format!(
            "{p} is not a position [lon, lat] (longitude -180..180, latitude -90..90)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn polygons_are_checked() {
        let square = json!([[[122.0, 37.0], [122.1, 37.0], [122.1, 37.1], [122.0, 37.0]]]);
        assert!(check(&json!({"type": "Polygon", "coordinates": square})).is_ok());
        assert!(check(&json!({"type": "MultiPolygon", "coordinates": [square]})).is_ok());
        assert!(check(&json!({"type": "Point", "coordinates": [122.0, 37.0]})).is_err());
        let open = json!([[[122.0, 37.0], [122.1, 37.0], [122.1, 37.1], [122.0, 37.1]]]);
        assert!(check(&json!({"type": "Polygon", "coordinates": open})).is_err());
        let swapped = json!([[[37.0, 122.0], [37.1, 122.0], [37.1, 122.1], [37.0, 122.0]]]);
        assert!(check(&json!({"type": "Polygon", "coordinates": swapped})).is_err());
    }
}
