//! Typed metadata getters. Integer getters accept any integer type whose value fits the
//! requested one (converters write u32 or i32 or u64 for the same field); float getters
//! accept f32 or f64.

use super::{GgufError, GgufFile, MetadataValue};

fn wrong_type(key: &str, expected: &'static str, found: &MetadataValue) -> GgufError {
    GgufError::WrongType {
        key: key.to_owned(),
        expected,
        found: found.type_name(),
    }
}

fn int_as<T: TryFrom<i128>>(
    key: &str,
    expected: &'static str,
    v: &MetadataValue,
) -> Result<T, GgufError> {
    let wide = v.as_i128().ok_or_else(|| wrong_type(key, expected, v))?;
    T::try_from(wide).map_err(|_| GgufError::ValueOutOfRange {
        key: key.to_owned(),
        expected,
        value: wide.to_string(),
    })
}

fn float_of(v: &MetadataValue) -> Option<f64> {
    match *v {
        MetadataValue::F32(x) => Some(x.into()),
        MetadataValue::F64(x) => Some(x),
        _ => None,
    }
}

fn array_of<'a>(
    key: &str,
    expected: &'static str,
    v: &'a MetadataValue,
) -> Result<&'a [MetadataValue], GgufError> {
    v.as_array().ok_or_else(|| wrong_type(key, expected, v))
}

impl GgufFile {
    fn require(&self, key: &str) -> Result<&MetadataValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_owned(),
        })
    }

    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| wrong_type(key, "string", v))
    }

    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        int_as(key, "u32", self.require(key)?)
    }

    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        int_as(key, "u64", self.require(key)?)
    }

    /// F32, or F64 rounded to f32.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        float_of(v)
            .map(|x| x as f32)
            .ok_or_else(|| wrong_type(key, "f32", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            MetadataValue::Bool(b) => Ok(*b),
            v => Err(wrong_type(key, "bool", v)),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        const EXPECTED: &str = "array of string";
        let items = array_of(key, EXPECTED, self.require(key)?)?;
        items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| wrong_type(key, EXPECTED, v)))
            .collect()
    }

    /// Elements of type f32 (or f64, rounded).
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        const EXPECTED: &str = "array of f32";
        let items = array_of(key, EXPECTED, self.require(key)?)?;
        items
            .iter()
            .map(|v| {
                float_of(v)
                    .map(|x| x as f32)
                    .ok_or_else(|| wrong_type(key, EXPECTED, v))
            })
            .collect()
    }

    /// Elements of any integer type whose values fit i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        const EXPECTED: &str = "array of i32";
        let items = array_of(key, EXPECTED, self.require(key)?)?;
        items.iter().map(|v| int_as(key, EXPECTED, v)).collect()
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.optional(key, Self::get_str)
    }

    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.optional(key, Self::get_u32)
    }

    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.optional(key, Self::get_u64)
    }

    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.optional(key, Self::get_f32)
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.optional(key, Self::get_bool)
    }

    fn optional<'a, T>(
        &'a self,
        key: &str,
        get: impl FnOnce(&'a Self, &str) -> Result<T, GgufError>,
    ) -> Result<Option<T>, GgufError> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        get(self, key).map(Some)
    }
}
